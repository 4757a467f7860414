"""The sandbox app: every declared provider's routes, the request log, faults and latency.

Each provider's routes live in their own module (`sandbox/nebius.py`, ...), which its declaration
names, and are mounted under `/<provider>`; adapters pointed at `http://host:port/<provider>` cannot
tell the difference. What the routes share (the state, auth and error helpers) is in
`sandbox/state.py`, which they import; nothing imports this module but the sandbox's starters.

Control routes (not part of any provider API):
- `GET /_sandbox/requests`: every provider request seen (method, path, query, JSON body, auth masked).
- `DELETE /_sandbox/requests`: clear that log.
- `POST /_sandbox/faults` `{"provider", "status"?, "latency"?, "lose_response"?, "methods"?, "count"?}`:
  make a provider fail with `status` (its documented error shape) for the next `count` calls (all, if
  omitted) and/or answer after `latency` seconds. `lose_response: S` handles the request for real (a
  create creates) and then holds the answer S seconds, past a client's timeout: the "the provider got
  it but the answer was lost" case. `methods` (e.g. `["POST"]`) limits a fault to those methods, and
  `paths` (e.g. `["/instances"]`) to request paths ending with one of them.
  `DELETE /_sandbox/faults` clears them.
- `POST /_sandbox/prices` `{"provider", "gpu", "factor"}`: multiply that provider's prices for that GPU
  model (all regions, sizes and currencies) by `factor` from now on, e.g. to change a price while a
  question is open. Factors compound; the test fixture's reset of `stores` clears them.
"""

from __future__ import annotations

import asyncio
import importlib
import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gpu_tools.providers import PROVIDERS
from gpu_tools.sandbox.state import Fault, Sandbox, fastapi_error, gpu_key


def _mask_headers(headers: dict[str, str]) -> dict[str, str]:
    out = {}
    for key in ("authorization", "x-api-key", "namespace", "content-type"):
        if key in headers:
            value = headers[key]
            if key == "authorization":
                scheme, _, _ = value.partition(" ")
                value = f"{scheme} ***" if _ else "***"
            elif key == "x-api-key":
                value = "***"
            out[key] = value
    return out


class ControlMiddleware:
    """Logs provider requests and applies injected latency and faults, per provider prefix."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sb = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        raw = b"".join(chunks)
        provider = scope["path"].strip("/").split("/", 1)[0]
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        self.sb.requests.append(
            {
                "provider": provider,
                "method": scope["method"],
                "path": scope["path"],
                "query": scope.get("query_string", b"").decode(),
                "body": body,
                "headers": _mask_headers(headers),
            }
        )
        fault = self.sb.faults.get(provider)
        if fault and not fault.applies(scope["method"], scope["path"]):
            fault = None
        if fault and fault.count is not None:
            fault.count -= 1
            if fault.count <= 0:
                self.sb.faults.pop(provider, None)
        delay = self.sb.latency + (fault.latency if fault else 0.0)
        if delay:
            await asyncio.sleep(delay)
        if fault and fault.status:
            shape = self.sb.error_shapes.get(provider, fastapi_error)
            response = shape(fault.status, f"sandbox fault injected ({fault.status})", scope["path"])
            await response(scope, receive, send)
            return

        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        if not (fault and fault.lose_response):
            await self.app(scope, replay, send)
            return
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        await self.app(scope, replay, hold)  # the provider acts on the request...
        await asyncio.sleep(fault.lose_response)  # ...and its answer arrives too late
        try:
            for message in held:
                await send(message)
        except Exception:  # the client gave up and closed the connection
            pass
        finally:
            self.sb.answered_late()


async def _requests(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    if request.method == "DELETE":
        sb.requests.clear()
        return JSONResponse({"cleared": True})
    return JSONResponse(sb.requests)


async def _faults(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    if request.method == "DELETE":
        sb.faults.clear()
        return JSONResponse({"cleared": True})
    body = await request.json()
    provider = body.get("provider")
    if provider not in sb.error_shapes:
        return JSONResponse({"detail": f"unknown provider {provider!r}"}, status_code=422)
    methods, paths = body.get("methods"), body.get("paths")
    sb.faults[provider] = Fault(
        status=body.get("status"),
        latency=float(body.get("latency") or 0),
        count=body.get("count"),
        lose_response=float(body.get("lose_response") or 0),
        methods=[m.upper() for m in methods] if methods else None,
        paths=[str(p) for p in paths] if paths else None,
    )
    return JSONResponse({"provider": provider, **sb.faults[provider].__dict__})


async def _prices(request: Request) -> Response:
    """Move one provider's price of one GPU model: `{"provider", "gpu", "factor"}`."""
    sb: Sandbox = request.app.state.sandbox
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse({"detail": "the body is not JSON"}, status_code=400)
    if not isinstance(body, dict) or set(body) != {"provider", "gpu", "factor"}:
        return JSONResponse(
            {"detail": 'send exactly {"provider": ..., "gpu": ..., "factor": ...}'}, status_code=400
        )
    provider, gpu, factor = body["provider"], body["gpu"], body["factor"]
    priced = sb.priced_gpus.get(provider) if isinstance(provider, str) else None
    if priced is None:
        known = ", ".join(sorted(sb.priced_gpus))
        return JSONResponse(
            {"detail": f"provider {provider!r} has no prices in the sandbox; priced: {known}"},
            status_code=400,
        )
    if not isinstance(gpu, str) or gpu_key(gpu) not in {gpu_key(g) for g in priced}:
        models = ", ".join(sorted({gpu_key(g) for g in priced}))
        return JSONResponse(
            {"detail": f"gpu {gpu!r} is not priced by {provider} in the sandbox; priced: {models}"},
            status_code=400,
        )
    if isinstance(factor, bool) or not isinstance(factor, int | float) or not 0 < factor < 1e6:
        return JSONResponse({"detail": "factor must be a number above 0 and below 1e6"}, status_code=400)
    prices = sb.store("sandbox.prices")
    key = f"{provider}:{gpu_key(gpu)}"
    prices[key] = prices.get(key, 1.0) * float(factor)
    return JSONResponse({"provider": provider, "gpu": gpu_key(gpu), "factor": prices[key]})


def create_app(
    *,
    api_key: str = "sandbox-key",
    ready_after: float = 3.0,
    latency: float = 0.0,
    sandbox: Sandbox | None = None,
) -> Starlette:
    """The sandbox ASGI app serving every provider's documented API under `/<provider>`."""
    sb = sandbox or Sandbox(api_key=api_key, ready_after=ready_after, latency=latency)
    mounts = []
    # Every declared provider's routes (its declaration names the module), under /<provider>.
    for spec in PROVIDERS.values():
        module = importlib.import_module(spec.sandbox)
        mounts.append(Mount(f"/{spec.name}", routes=module.routes(sb)))
        sb.error_shapes[spec.name] = module.error
        if getattr(module, "PRICED_GPUS", None):
            sb.priced_gpus[spec.name] = list(module.PRICED_GPUS)
    app = Starlette(
        routes=[
            Route("/_sandbox/requests", _requests, methods=["GET", "DELETE"]),
            Route("/_sandbox/faults", _faults, methods=["POST", "DELETE"]),
            Route("/_sandbox/prices", _prices, methods=["POST"]),
            *mounts,
        ]
    )
    app.state.sandbox = sb
    app.add_middleware(ControlMiddleware, sandbox=sb)
    return app
