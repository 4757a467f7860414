"""Typed errors, each with a short message meant for the person (or agent) who made the call.

Every error the core raises derives from `GpuToolsError`. The fronts turn them into a one-line
MCP `ToolError` or a short notebook message (`_render_traceback_`), never a raw traceback.
Messages never contain credentials: providers' messages are passed through `redact` first.
"""

from __future__ import annotations

import logging
from typing import Any

from gpu_tools.secrets import TEXT_SECRETS

# Known secret values -> True for configured credentials (never shown), False for secrets a user
# passed in (passwords), which an explicit `reveal_secrets` read may show back.
_known_secrets: dict[str, bool] = {}


def register_secret(value: str | None, *, credential: bool = True) -> None:
    """Remember a secret so `redact` removes it wherever it might surface. A password a user passed in
    counts from 8 characters: a shorter one is still masked in its own field, but replacing a short
    common word in every output would hide more than it protects."""
    if value and len(value) >= (4 if credential else 8):
        _known_secrets[value] = _known_secrets.get(value, False) or credential


def redact(text: str) -> str:
    """Remove known credentials and credential-looking values from a message."""
    text = redact_known(text)
    for pattern in TEXT_SECRETS:
        text = pattern.sub(lambda m: m.group(1) + "***", text)
    return text


def redact_known(text: str, *, user_secrets: bool = True) -> str:
    """Replace every registered secret: configured credentials always, passwords a user passed in
    unless `user_secrets` is False (an explicit reveal)."""
    for secret in sorted(_known_secrets, key=len, reverse=True):
        if secret in text and (user_secrets or _known_secrets[secret]):
            text = text.replace(secret, "***")
    return text


def redact_value(value: Any) -> Any:
    """A copy of JSON-like `value` with every registered secret replaced, in keys and strings alike."""
    if not _known_secrets:
        return value
    if isinstance(value, str):
        return redact_known(value)
    if isinstance(value, dict):
        return {redact_value(k): redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """A logging filter that removes registered secrets from every record it passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


class GpuToolsError(Exception):
    """Base of every error the core raises on purpose."""

    kind = "error"

    def __init__(self, message: str, *, provider: str | None = None, hint: str | None = None) -> None:
        self.message = redact(message)
        self.provider = provider
        self.hint = hint
        super().__init__(self.message)

    def __str__(self) -> str:
        prefix = f"{self.provider}: " if self.provider else ""
        text = f"{prefix}{self.message}"
        return f"{text} {self.hint}" if self.hint else text

    def _render_traceback_(self) -> list[str]:
        """IPython shows these lines instead of a traceback."""
        return [f"{type(self).__name__}: {self}"]


class InvalidInput(GpuToolsError):
    """The arguments are wrong; nothing was sent."""

    kind = "invalid_input"


class UnknownOperation(InvalidInput):
    kind = "unknown_operation"


class NotConfigured(GpuToolsError):
    """The provider has no credentials (or is not allowed by policy)."""

    kind = "not_configured"


class Unsupported(GpuToolsError):
    """The provider cannot do this; the message names the providers that can."""

    kind = "unsupported"


class PolicyRefused(GpuToolsError):
    """A policy rule refused the plan before anyone was asked; nothing was sent."""

    kind = "policy_refused"


class UnderWay(GpuToolsError):
    """The same stop, start or delete of this resource was sent before and its outcome is not known
    yet (still running, or its answer lost): nothing was sent, so the change is never sent twice."""

    kind = "under_way"


class ConfirmationRefused(GpuToolsError):
    """The human did not confirm (declined, cancelled, or could not be asked); nothing was sent."""

    kind = "not_confirmed"


class PlanChanged(ConfirmationRefused):
    """The plan re-read just before the send is not the one approved (price, target, request): nothing
    was sent; the front asks again about the new plan. `change` says what changed, old -> new."""

    def __init__(self, message: str, *, change: str, provider: str | None = None) -> None:
        super().__init__(message, provider=provider)
        self.change = redact(change)


class WaitTimeout(GpuToolsError):
    kind = "wait_timeout"


class ProviderError(GpuToolsError):
    """The provider answered with an error, or could not be reached."""

    kind = "provider_error"

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.status = status
        super().__init__(message, provider=provider, hint=hint)

    def __str__(self) -> str:
        base = super().__str__()
        if self.status is None:
            return base
        head, sep, rest = base.partition(": ") if self.provider else ("", "", base)
        return f"{head}{sep}HTTP {self.status}: {rest}"


class AuthError(ProviderError):
    kind = "auth"


class NotFound(ProviderError):
    kind = "not_found"


class ProviderRejected(ProviderError):
    """400/409/422: the provider refused the request body."""

    kind = "rejected"


class RateLimited(ProviderError):
    kind = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        self.retry_after = retry_after
        if kw.get("hint") is None:
            kw["hint"] = (
                f"Retry after {retry_after:g} s (the provider's Retry-After)."
                if retry_after is not None
                else "The provider gave no Retry-After: wait a minute before retrying."
            )
        super().__init__(message, **kw)


class ProviderUnavailable(ProviderError):
    """5xx or connection failure."""

    kind = "unavailable"


class ProviderTimeout(ProviderError):
    kind = "timeout"


class OutcomeUnknown(ProviderError):
    """A change may have reached the provider but its answer never came (timeout, dropped
    connection, 5xx after sending): the resource may exist. Nothing is ever resent; the journal row
    stays `unknown` until reconciliation finds what the provider holds."""

    kind = "outcome_unknown"


class MalformedResponse(ProviderError):
    """The provider answered something we cannot read (not JSON, or not the documented shape)."""

    kind = "malformed_response"
