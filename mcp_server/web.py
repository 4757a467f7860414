"""The HTTP server's routes beside `/mcp`, and the dispatcher that puts them in front of it.

- `/.well-known/oauth-protected-resource` and its path form for `/mcp` (RFC 9728), when OAuth is on;
- `/healthz` (the process answers) and `/readyz` (the journal answers; the guard's heartbeat is fresh
  where a guard is expected), without a token and without detail;
- `/metrics` (Prometheus text) with its own bearer token, when `metrics_token` is set.

Everything else goes to the authenticated MCP app.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from mcp.server.auth.handlers.metadata import ProtectedResourceMetadataHandler
from mcp.server.auth.routes import build_resource_metadata_url, cors_middleware
from mcp.shared.auth import ProtectedResourceMetadata
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gpu_tools.settings import SCOPES

WELL_KNOWN = "/.well-known/oauth-protected-resource"


def resource_metadata_url(resource: str) -> str:
    return str(build_resource_metadata_url(resource))  # type: ignore[arg-type]


def protected_resource_routes(resource: str, issuer: str) -> list[Route]:
    """RFC 9728 metadata at the path form (`/.well-known/oauth-protected-resource/mcp`) and the root form."""
    metadata = ProtectedResourceMetadata(
        resource=resource,  # type: ignore[arg-type]  # strings keep their exact spelling
        authorization_servers=[issuer],  # type: ignore[list-item]
        scopes_supported=list(SCOPES),
        bearer_methods_supported=["header"],
        resource_name="gpu-tools",
    )
    endpoint = cors_middleware(ProtectedResourceMetadataHandler(metadata).handle, ["GET", "OPTIONS"])
    path = resource_metadata_url(resource).split("://", 1)[1].split("/", 1)[1]
    paths = dict.fromkeys([f"/{path}", WELL_KNOWN])
    return [Route(p, endpoint=endpoint, methods=["GET", "OPTIONS"]) for p in paths]


def health_routes(ready: Callable[[], Awaitable[bool]]) -> list[Route]:
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})

    async def readyz(request: Request) -> Response:
        ok = await ready()
        return JSONResponse(
            {"status": "ready" if ok else "unready"},
            status_code=200 if ok else 503,
            headers={"Cache-Control": "no-store"},
        )

    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]


def metrics_route(render: Callable[[], Awaitable[tuple[bytes, str]]], token: str | None) -> Route:
    """`/metrics`; with `token`, only for `Authorization: Bearer <token>` (compared in constant time)."""

    async def metrics(request: Request) -> Response:
        if token is not None:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
                return JSONResponse({"error": "send Authorization: Bearer <metrics_token>"}, status_code=401)
        body, content_type = await render()
        return Response(body, media_type=content_type)

    return Route("/metrics", metrics, methods=["GET"])


class Front:
    """ASGI dispatcher: the routes above by exact path, everything else (and lifespan) to `app`."""

    def __init__(self, app: ASGIApp, routes: list[Route]) -> None:
        self.app = app
        self.paths = {route.path for route in routes}
        self.side = Starlette(routes=routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") in self.paths:
            await self.side(scope, receive, send)
            return
        await self.app(scope, receive, send)
