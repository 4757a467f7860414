"""Who is asking, over HTTP: bearer tokens, each standing for a user name.

`BearerAuth` refuses every HTTP request without a known token and hands the request on with its user,
in the two forms the layers below read:
- `scope["user"]`, the SDK's `AuthenticatedUser`, whose principal (client id `gpu-mcp`, subject the
  user name) the SDK compares with the principal that opened a 2025-11-25 session before it lets a
  request answer on, stream from or end that session, and binds a sealed `requestState` to
  (2026-07-28), so one user cannot use another's session or answer another's question;
- `scope[USER_KEY]`, the user name the tools read (`user_of`) to journal who asked and who confirmed.

`journal_state_refusals` (2026-07-28: another user's `requestState`, an expired or altered one) and
`SessionRefusals` (2025-11-25: another user's session) journal a mutating tool call the SDK refused
before it reached the tool: the refusal leaves a row naming who tried.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.request_state import RequestStateBoundary
from mcp.shared.exceptions import MCPError
from starlette.authentication import AuthCredentials
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gpu_tools.errors import GpuToolsError
from gpu_tools.settings import MIN_TOKEN_LENGTH

if TYPE_CHECKING:
    from gpu_tools.operations import Operation
    from gpu_tools.toolkit import Toolkit

USER_KEY = "gpu_tools.user"  # the ASGI scope key BearerAuth fills with the user name
CLIENT_ID = "gpu-mcp"  # the client id of every static bearer token's principal
UNAUTHORIZED = (
    b'{"error": "missing or wrong bearer token: send Authorization: Bearer <token> (a token from '
    b'http_tokens, GPU_TOOLS_HTTP_TOKEN, or the one in the file gpu-mcp named at start)"}'
)


def authenticated_user(token: str, name: str | None) -> AuthenticatedUser:
    """The SDK's user for one static token. The principal is the user name (two tokens of one user are
    one principal); the one unnamed token of a one-user server is a principal of its own. The access
    token object holds a digest, never the token."""
    digest = hashlib.sha256(token.encode()).hexdigest()[:16]
    return AuthenticatedUser(
        AccessToken(token=f"sha256:{digest}", client_id=CLIENT_ID, scopes=[], subject=name or "(one user)")
    )


class BearerAuth:
    """Refuses every HTTP request without `Authorization: Bearer <token>` (lifespan passes through).

    `tokens` maps each accepted token to its user name (None: the one-user form, no name). Every
    token is compared in constant time. The scheme is case-insensitive (RFC 7235). The 401 carries
    no `WWW-Authenticate: Bearer` challenge: this server offers no OAuth, and that challenge sends
    OAuth-capable clients looking for authorization-server metadata that does not exist."""

    def __init__(self, app: ASGIApp, tokens: str | Mapping[str, str | None]) -> None:
        users = {tokens: None} if isinstance(tokens, str) else dict(tokens)
        if not users or any(len(token.strip()) < MIN_TOKEN_LENGTH for token in users):
            # Settings refuse these first; this is the last line: an empty token would match anyone.
            raise ValueError(f"every bearer token needs at least {MIN_TOKEN_LENGTH} characters")
        # AuthContextMiddleware puts scope["user"] where the SDK's requestState binding looks for it.
        self.app = AuthContextMiddleware(app)
        self.tokens = [
            (token.encode(), user, authenticated_user(token, user)) for token, user in users.items()
        ]

    @staticmethod
    def _token(scope: Scope) -> bytes:
        header = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, token = header.partition(b" ")
        return token.strip() if scheme.lower() == b"bearer" else b""

    def user(self, scope: Scope) -> tuple[bool, str | None]:
        found, name, _ = self._find(scope)
        return found, name

    def _find(self, scope: Scope) -> tuple[bool, str | None, AuthenticatedUser | None]:
        given = self._token(scope)
        found, name, principal = False, None, None
        for token, user, authenticated in self.tokens:  # no early exit: the time taken names no token
            if hmac.compare_digest(given, token):
                found, name, principal = True, user, authenticated
        return found, name, principal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found, name, principal = self._find(scope)
            if not found or not self._token(scope):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": UNAUTHORIZED})
                return
            scope = {**scope, USER_KEY: name, "user": principal, "auth": AuthCredentials([])}
        await self.app(scope, receive, send)


class SessionRefusals:
    """ASGI middleware between BearerAuth and the SDK's streamable HTTP app: a `tools/call` of a mutating
    tool posted with an `mcp-session-id` that the SDK answers 404 (a session that is unknown, ended, or
    opened by another user's token) is journaled as refused, naming the user who sent it. Only such
    posts are read ahead (and handed on unchanged); everything else passes straight through."""

    def __init__(self, app: ASGIApp, tk: Toolkit) -> None:
        self.app = app
        self.tk = tk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or ())
        if scope["type"] != "http" or scope.get("method") != "POST" or b"mcp-session-id" not in headers:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        first: list[Message] = []
        while True:
            message = await receive()
            first.append(message)
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        calls = self._mutating_calls(b"".join(chunks))

        async def replay() -> Message:
            return first.pop(0) if first else await receive()

        status: list[int] = []

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.app(scope, replay, watch)
        if calls and status and status[0] == 404:
            for op, arguments in calls:
                await self.tk.gate.journal_refusal(
                    op,
                    arguments,
                    "the call named a session that is unknown, ended, or opened with another user's token; "
                    "nothing was sent",
                    actor=scope.get(USER_KEY),
                )

    def _mutating_calls(self, body: bytes) -> list[tuple[Operation, dict[str, Any]]]:
        try:
            parsed = json.loads(body)
        except ValueError:
            return []
        found = []
        for message in parsed if isinstance(parsed, list) else [parsed]:
            if not isinstance(message, dict) or message.get("method") != "tools/call":
                continue
            params = message.get("params")
            name = params.get("name") if isinstance(params, dict) else None
            if not isinstance(name, str):
                continue
            try:
                op = self.tk.registry.get(name)
            except GpuToolsError:
                continue
            if op.mutating:
                arguments = params.get("arguments") if isinstance(params, dict) else None
                found.append((op, arguments if isinstance(arguments, dict) else {}))
        return found


def user_of(request: Any) -> str | None:
    """The user BearerAuth found for this request (None over stdio, in process, or one-user HTTP)."""
    scope = getattr(request, "scope", None)
    return scope.get(USER_KEY) if isinstance(scope, dict) else None


class JournalStateRefusals:
    """Server middleware, outside the SDK's requestState boundary: a `tools/call` of a mutating tool
    whose sealed state the boundary refuses (another user's, expired, altered) is journaled as refused,
    naming the user who sent it, and the SDK's refusal goes back unchanged."""

    def __init__(self, tk: Toolkit) -> None:
        self.tk = tk

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        try:
            return await call_next(ctx)
        except MCPError as exc:
            data = exc.error.data
            if ctx.method == "tools/call" and isinstance(data, dict):
                if data.get("reason") == "invalid_request_state":
                    await self._journal(ctx)
            raise

    async def _journal(self, ctx: ServerRequestContext[Any, Any]) -> None:
        params = ctx.params or {}
        name, arguments = params.get("name"), params.get("arguments")
        try:
            op = self.tk.registry.get(name) if isinstance(name, str) else None
        except GpuToolsError:  # an unknown tool: nothing of ours was asked
            return
        if op is None or not op.mutating:
            return
        who = user_of(getattr(ctx, "request", None))
        await self.tk.gate.journal_refusal(
            op,
            arguments if isinstance(arguments, dict) else {},
            "the answer's requestState was refused: it was sealed for another user, has expired or was "
            "altered; nothing was sent",
            actor=who,
        )


def journal_state_refusals(server: Any) -> None:
    """Install `JournalStateRefusals` on an MCPServer built by `build_server`, just outside the SDK's
    requestState boundary, so it sees what the boundary refuses."""
    chain = server.middleware
    boundary = next((i for i, m in enumerate(chain) if isinstance(m, RequestStateBoundary)), 0)
    chain.insert(boundary, JournalStateRefusals(server.toolkit))
