"""What every provider's sandbox routes share: the sandbox's state, auth helpers and error shapes.

A leaf of the sandbox: the provider route modules and the app import it, it imports neither.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

ErrorShape = Callable[[int, str, str], Response]


def fastapi_error(status: int, message: str, path: str) -> Response:
    """FastAPI's error shape, `{"detail": message}` (Nebius, NetMind)."""
    return JSONResponse({"detail": message}, status_code=status)


def fastapi_invalid(loc: list[Any], msg: str, kind: str = "value_error") -> Response:
    """FastAPI's 422 validation shape, `{"detail": [{"loc", "msg", "type"}]}`."""
    return JSONResponse({"detail": [{"loc": loc, "msg": msg, "type": kind}]}, status_code=422)


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (any case of the scheme), or None."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


@dataclass
class Fault:
    status: int | None = None
    latency: float = 0.0
    count: int | None = None
    lose_response: float = 0.0
    methods: list[str] | None = None

    def applies(self, method: str) -> bool:
        return self.methods is None or method.upper() in self.methods


@dataclass
class Sandbox:
    """Mutable state of one sandbox instance (shared by every provider's routes)."""

    api_key: str = "sandbox-key"
    ready_after: float = 3.0
    latency: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    faults: dict[str, Fault] = field(default_factory=dict)
    stores: dict[str, dict[str, Any]] = field(default_factory=dict)
    error_shapes: dict[str, ErrorShape] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic

    def store(self, name: str) -> dict[str, Any]:
        return self.stores.setdefault(name, {})

    @staticmethod
    def new_id(prefix: str = "") -> str:
        return prefix + uuid.uuid4().hex[:12]

    def elapsed(self, since: float) -> float:
        return self.clock() - since
