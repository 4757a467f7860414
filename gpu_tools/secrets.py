"""Which values are secrets, and the one way they are kept out of outputs.

Secrets are found by name: a field whose name is in `SECRET_KEYS` (or in a provider's own
`secret_keys`), every value of a field a provider declares as a map of secrets (Sesterce's `envs`),
and the value of a secret-named parameter inside a URL (a Jupyter link's `?token=`). `mask_secrets`
replaces them in structured data and hands back what it replaced; the provider base registers those
values as known secrets (`gpu_tools.errors.register_secret`), so they are also removed from every
other output, log line and journal row they might turn up in. For free text with no structure (a
provider's error message), `TEXT_SECRETS` finds `name=value` pairs by the same names.

A leaf: it imports nothing of ours.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

MASK = "***"

# Field names whose values are secrets wherever they appear in provider JSON (case-insensitive).
SECRET_KEYS = frozenset(
    {
        "password",
        "passwd",
        "docker_passwd",
        "sshpassword",
        "token",
        "secret",
        "api_key",
        "apikey",
        "access_token",
        "authorization",
        "jupyter_token",
    }
)

# Secrets carried in URLs, e.g. a Jupyter link `...?token=abc`.
URL_SECRET = re.compile(r"(?i)([?&#](?:token|access_token|password|passwd|key|api_key)=)([^&#\s\"']+)")

# `name: value` / `name=value` in free text, for the same names (plus `api-key`), and bearer tokens.
_TEXT_NAMES = "|".join(sorted((re.escape(k) for k in SECRET_KEYS | {"api-key"}), key=len, reverse=True))
TEXT_SECRETS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-~+/=]{6,}"),
    re.compile(rf"(?i)((?:{_TEXT_NAMES})[\"']?\s*[:=]\s*[\"']?)[^\s\"',}}]{{4,}}"),
)


def mask_url_secrets(text: str, found: list[str] | None = None) -> str:
    """`text` with the value of every secret-named URL parameter replaced by `***`."""

    def sub(m: re.Match[str]) -> str:
        if found is not None:
            found.append(m.group(2))
        return m.group(1) + MASK

    return URL_SECRET.sub(sub, text)


def mask_secrets(
    value: Any, keys: Iterable[str] = (), maps: Iterable[str] = (), found: list[str] | None = None
) -> Any:
    """A copy of JSON-like `value` with every secret replaced by `***`: fields named in
    `SECRET_KEYS` or `keys`, every value (the names kept) of a field named in `maps`, and secrets in
    URLs. The replaced values are appended to `found` when it is given."""
    return _masked(value, _names(frozenset(keys)), frozenset(k.lower() for k in maps), found)


@functools.cache
def _names(extra: frozenset[str]) -> frozenset[str]:
    return SECRET_KEYS | {k.lower() for k in extra}


def _masked(v: Any, keys: frozenset[str], maps: frozenset[str], found: list[str] | None) -> Any:
    if isinstance(v, str):
        return mask_url_secrets(v, found) if "=" in v else v
    if isinstance(v, list):
        return [_masked(x, keys, maps, found) for x in v]
    if not isinstance(v, dict):
        return v
    out: dict[Any, Any] = {}
    for k, val in v.items():
        name = k.lower() if isinstance(k, str) else None
        if name in keys and val not in (None, ""):
            _collect(val, found)
            out[k] = MASK
        elif name in maps and isinstance(val, dict):
            _collect(list(val.values()), found)
            out[k] = {n: MASK for n in val}
        else:
            out[k] = _masked(val, keys, maps, found)
    return out


def _collect(value: Any, found: list[str] | None) -> None:
    if found is None:
        return
    if isinstance(value, str):
        found.append(value)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect(item, found)
    elif isinstance(value, dict):
        _collect(list(value.values()), found)
