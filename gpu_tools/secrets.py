"""Which values are secrets, and the one way they are kept out of outputs.

Secrets are found by name: a field whose name is in `SECRET_KEYS` (or in a provider's own
`secret_keys`), every value of a field a provider declares as a map of secrets (Sesterce's `envs`),
and the value of a secret-named parameter inside a URL (a Jupyter link's `?token=`). `mask_secrets`
replaces them in structured data (every provider answer, plan body and result goes through it);
for free text with no structure (a provider's error message), `TEXT_SECRETS` finds `name=value`
pairs by the same names. Secrets known by value (credentials, passwords a user passed in) are
removed from every output by `gpu_tools.errors.redact_known`.

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
URL_SECRET = re.compile(r"(?i)([?&#](?:token|access_token|password|passwd|key|api_key)=)[^&#\s\"']+")

# `name: value` / `name=value` in free text, for the same names (plus `api-key`), and bearer tokens.
_TEXT_NAMES = "|".join(sorted((re.escape(k) for k in SECRET_KEYS | {"api-key"}), key=len, reverse=True))
TEXT_SECRETS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-~+/=]{6,}"),
    re.compile(rf"(?i)((?:{_TEXT_NAMES})[\"']?\s*[:=]\s*[\"']?)[^\s\"',}}]{{4,}}"),
)


def mask_url_secrets(text: str) -> str:
    """`text` with the value of every secret-named URL parameter replaced by `***`."""
    return URL_SECRET.sub(lambda m: m.group(1) + MASK, text)


def mask_secrets(value: Any, keys: Iterable[str] = (), maps: Iterable[str] = ()) -> Any:
    """A copy of JSON-like `value` with every secret replaced by `***`: fields named in
    `SECRET_KEYS` or `keys`, every value (the names kept) of a field named in `maps`, and secrets in
    URLs."""
    return _masked(value, _names(frozenset(keys)), frozenset(k.lower() for k in maps))


@functools.cache
def _names(extra: frozenset[str]) -> frozenset[str]:
    return SECRET_KEYS | {k.lower() for k in extra}


def _masked(v: Any, keys: frozenset[str], maps: frozenset[str]) -> Any:
    if isinstance(v, str):
        return mask_url_secrets(v) if "=" in v else v
    if isinstance(v, list):
        return [_masked(x, keys, maps) for x in v]
    if not isinstance(v, dict):
        return v
    out: dict[Any, Any] = {}
    for k, val in v.items():
        name = k.lower() if isinstance(k, str) else None
        if name in keys and val not in (None, ""):
            out[k] = MASK
        elif name in maps and isinstance(val, dict):
            out[k] = {n: MASK for n in val}
        else:
            out[k] = _masked(val, keys, maps)
    return out
