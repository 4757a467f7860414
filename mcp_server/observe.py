"""What the HTTP server tells the people who run it: a metric and a log line per tool call, JSON log lines,
and readiness.

`CallObserver` is server middleware, outermost of ours: it times each `tools/call`, counts it in
`gpu_tools_tool_calls_total{tool,outcome}` and logs one line with the request id, user, tool, provider,
outcome and duration (never an argument value other than the provider's name, never a secret: every
handler keeps the RedactingFilter). `JsonFormatter` writes those lines, and every other, as JSON.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.types import CallToolResult

from gpu_tools.catalog import GUARD_INTERVAL, GUARD_LAST_PASS
from gpu_tools.errors import GpuToolsError
from gpu_tools.logs import JsonFormatter, configure_logging
from mcp_server.auth import user_of

if TYPE_CHECKING:
    from gpu_tools.metrics import Metrics
    from gpu_tools.toolkit import Toolkit

__all__ = ["CallObserver", "JsonFormatter", "configure_logging", "install_observer", "readiness"]

calls_log = logging.getLogger("gpu_tools.calls")


def outcome_of(result: HandlerResult) -> str:
    if isinstance(result, CallToolResult):
        if not result.is_error:
            return "ok"
        text = " ".join(getattr(c, "text", "") for c in result.content)
        return "refused" if text.startswith("refused:") else "error"
    if isinstance(result, dict) and result.get("isError"):
        return "error"
    if type(result).__name__ == "InputRequiredResult":
        return "input_required"
    return "ok"


class CallObserver:
    def __init__(self, tk: Toolkit, metrics: Metrics | None) -> None:
        self.tk = tk
        self.metrics = metrics

    def _names(self, params: dict[str, Any]) -> tuple[str, str | None]:
        name = params.get("name")
        try:
            op = self.tk.registry.get(name) if isinstance(name, str) else None
        except GpuToolsError:
            op = None
        if op is None:
            return "unknown", None  # a name no tool has: never a label
        arguments = params.get("arguments")
        provider = arguments.get("provider") if isinstance(arguments, dict) else None
        known = {p.name for p in self.tk.provider_infos()}
        return op.name, op.provider or (provider if provider in known else None)

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call":
            return await call_next(ctx)
        started = time.monotonic()
        tool, provider = self._names(ctx.params or {})
        outcome = "exception"
        try:
            result = await call_next(ctx)
            outcome = outcome_of(result)
            return result
        finally:
            if self.metrics is not None:
                self.metrics.tool_call(tool, outcome)
            calls_log.info(
                "tool call",
                extra={
                    "request_id": str(getattr(ctx, "request_id", "")) or None,
                    "user": user_of(getattr(ctx, "request", None)),
                    "tool": tool,
                    "provider": provider,
                    "outcome": outcome,
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                },
            )


def install_observer(server: Any, metrics: Metrics | None) -> None:
    """`CallObserver` just inside the SDK's own OpenTelemetry middleware, outside everything of ours."""
    server.middleware.insert(1 if server.middleware else 0, CallObserver(server.toolkit, metrics))


def readiness(tk: Toolkit, *, guard_expected: bool, timeout: float = 3.0) -> Callable[[], Awaitable[bool]]:
    """Ready: the journal answers a read within `timeout`, and (when a guard is expected) the guard's
    last pass is at most three guard intervals old."""

    def check() -> bool:
        journal = tk.journal
        last = journal.meta(GUARD_LAST_PASS)
        if not guard_expected:
            return True
        if not last:
            return False
        interval = float(journal.meta(GUARD_INTERVAL) or tk.settings.guard_interval)
        stamp = datetime.fromisoformat(last)
        stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
        return (datetime.now(UTC) - stamp).total_seconds() <= 3 * interval

    async def ready() -> bool:
        try:
            return await asyncio.wait_for(asyncio.to_thread(check), timeout)
        except Exception:  # any failure is "not ready"; the detail stays in the log
            logging.getLogger("gpu_tools.health").warning(
                "readyz: the journal does not answer", exc_info=False
            )
            return False

    return ready
