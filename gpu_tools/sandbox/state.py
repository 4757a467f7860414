"""What every provider's sandbox routes share: the sandbox's state, auth helpers and error shapes.

A leaf of the sandbox: the provider route modules and the app import it, it imports neither.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gpu_tools.gpus import canonical_gpu

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
    paths: list[str] | None = None

    def applies(self, method: str, path: str = "") -> bool:
        return (self.methods is None or method.upper() in self.methods) and (
            self.paths is None or path.endswith(tuple(self.paths))
        )


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
    # provider -> the GPU names it prices (each provider module's PRICED_GPUS), for /_sandbox/prices
    priced_gpus: dict[str, list[str]] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic  # how long things take (creating -> running)
    # The providers' wall clock: the creation times resources carry. Tests set a FakeClock here (and
    # give the toolkit the same one) to move time instead of sleeping past one-second timestamps.
    wall: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # Answers a `lose_response` fault held and then let go (sent too late, or to a client that was
    # gone): a test waits for one with `wait_late` instead of sleeping through the hold.
    late_answers: int = 0
    _late: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def store(self, name: str) -> dict[str, Any]:
        return self.stores.setdefault(name, {})

    @staticmethod
    def new_id(prefix: str = "") -> str:
        return prefix + uuid.uuid4().hex[:12]

    def elapsed(self, since: float) -> float:
        return self.clock() - since

    def answered_late(self) -> None:
        with self._late:
            self.late_answers += 1
            self._late.notify_all()

    def wait_late(self, count: int, timeout: float = 10.0) -> bool:
        """Wait (on a thread, not the sandbox's loop) until `count` held answers have gone out."""
        with self._late:
            return self._late.wait_for(lambda: self.late_answers >= count, timeout)

    def price_factor(self, provider: str, gpu: str | None) -> float:
        """What `POST /_sandbox/prices` multiplies `provider`'s price of `gpu` by (1 when untouched)."""
        return float(self.store("sandbox.prices").get(f"{provider}:{gpu_key(gpu)}", 1.0))


def gpu_key(name: str | None) -> str:
    """The model a GPU name means (`NVIDIA_H100_SXM5_80GB`, `NVIDIA-H100`, `H100` -> `H100`)."""
    return canonical_gpu(name) or (name or "").strip().upper()
