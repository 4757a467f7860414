"""`gpu-mcp`: the MCP server, over stdio (default) or streamable HTTP.

`--sandbox` starts the provider emulator in-process on a free loopback port and points every
adapter at it, so everything works end to end without an account.
"""

from __future__ import annotations

import argparse
import hmac
import logging
import os
import secrets
import sys

from starlette.types import ASGIApp, Receive, Scope, Send

from gpu_tools.sandbox import SandboxServer
from gpu_tools.settings import Settings, config_file
from mcp_server import build_server


class BearerAuth:
    """Refuses every HTTP request without `Authorization: Bearer <token>` (lifespan passes through)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
                    }
                )
                await send(
                    {"type": "http.response.body", "body": b'{"error": "missing or wrong bearer token"}'}
                )
                return
        await self.app(scope, receive, send)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gpu-mcp", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sandbox", action="store_true", help="serve against the built-in provider sandbox")
    parser.add_argument("--read-only", action="store_true", help="register no tool that changes anything")
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    parser.add_argument(
        "--sandbox-ready-after", type=float, default=3.0, help="seconds sandbox resources take to start"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="gpu-mcp: %(levelname)s %(message)s")
    settings = Settings()
    if args.read_only:
        settings = settings.model_copy(update={"read_only": True})
    sandbox = None
    if args.sandbox:
        sandbox = SandboxServer(ready_after=args.sandbox_ready_after).start()
        settings = settings.for_sandbox(sandbox.url)
    server = build_server(settings)
    tools = server.toolkit.operations()  # type: ignore[attr-defined]
    configured = [p.name for p in server.toolkit.provider_infos() if p.configured]  # type: ignore[attr-defined]
    say = lambda text: print(f"gpu-mcp: {text}", file=sys.stderr, flush=True)  # noqa: E731
    say(
        f"{len(tools)} tools"
        + (" (read-only)" if settings.read_only else "")
        + f"; providers with credentials: {', '.join(configured) or 'none'} (config: {config_file()})"
    )
    if sandbox:
        say(
            f"SANDBOX: every provider is emulated at {sandbox.url} (request log: {sandbox.url}/_sandbox/requests)"
        )
    try:
        if args.transport == "stdio":
            say(
                "serving MCP over stdio: start me from an MCP client, e.g. "
                '{"mcpServers": {"gpu": {"command": "gpu-mcp", "args": ["--sandbox"]}}}'
            )
            server.run()
        else:
            import uvicorn

            token = os.environ.get("GPU_TOOLS_HTTP_TOKEN") or secrets.token_urlsafe(24)
            if "GPU_TOOLS_HTTP_TOKEN" not in os.environ:
                say(f"generated bearer token (set GPU_TOOLS_HTTP_TOKEN to choose one): {token}")
            app = BearerAuth(server.streamable_http_app(host=args.host), token)
            say(
                f"serving MCP over streamable HTTP at http://{args.host}:{args.port}/mcp "
                "(send 'Authorization: Bearer <token>'); Ctrl-C to stop"
            )
            uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    except KeyboardInterrupt:
        pass
    finally:
        if sandbox:
            sandbox.stop()


if __name__ == "__main__":
    main()
