"""Who is asking, over HTTP, and what they may do: static bearer tokens (each standing for a user name and
scopes), and, with `oauth_issuer`, access tokens of the team's identity provider (`mcp_server.oauth`).

Roles are scopes: gpu.read (read tools, resources, prompts: needed for anything), gpu.write (mutating
tools, each still approved), gpu.approve (approving on the page), gpu.admin (enrolling approvers on the
page; both checked by gpu_tools.approvals). `ScopeGuard` shows each caller only the tools its
scopes allow and refuses (and journals) a call beyond them before anything is planned.

`BearerAuth` refuses every HTTP request without a valid token and hands the request on with its user,
in the forms the layers below read:
- `scope["user"]`, the SDK's `AuthenticatedUser`, whose principal (client id `gpu-mcp`, subject the
  user name) the SDK compares with the principal that opened a 2025-11-25 session before it lets a
  request answer on, stream from or end that session, and binds a sealed `requestState` to
  (2026-07-28), so one user cannot use another's session or answer another's question;
- `scope[USER_KEY]`, the user name the tools read (`user_of`) to journal who asked and who confirmed;
- `scope[SCOPES_KEY]`, the caller's scopes (`scopes_of`).

`journal_state_refusals` (2026-07-28: another user's `requestState`, an expired or altered one) and
`SessionRefusals` (2025-11-25: another user's session) journal a mutating tool call the SDK refused
before it reached the tool: the refusal leaves a row naming who tried.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.request_state import RequestStateBoundary
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel
from starlette.authentication import AuthCredentials
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gpu_tools.errors import GpuToolsError
from gpu_tools.settings import MIN_TOKEN_LENGTH, SCOPES

if TYPE_CHECKING:
    from gpu_tools.operations import Operation
    from gpu_tools.toolkit import Toolkit

USER_KEY = "gpu_tools.user"  # the ASGI scope key BearerAuth fills with the user name
SCOPES_KEY = "gpu_tools.scopes"  # ... and with the caller's scopes (roles), a frozenset
REALM = "gpu-mcp"  # the realm of the static-token challenge (RFC 6750 §3)
CLIENT_ID = "gpu-mcp"  # the client id of every static bearer token's principal
ALL_SCOPES = frozenset(SCOPES)
READ, WRITE = "gpu.read", "gpu.write"
UNAUTHORIZED = (
    b'{"error": "missing or wrong bearer token: send Authorization: Bearer <token> (a token from '
    b'http_tokens, GPU_TOOLS_HTTP_TOKEN, or the one in the file gpu-mcp named at start)"}'
)
UNAUTHORIZED_OAUTH = (
    b'{"error": "invalid_token", "error_description": "sign in: this server accepts access tokens of its '
    b'authorization server (see /.well-known/oauth-protected-resource) or a bearer token from http_tokens"}'
)

StaticUser = str | None | tuple[str | None, frozenset[str]]


def authenticated_user(
    token: str, name: str | None, scopes: frozenset[str] = ALL_SCOPES
) -> AuthenticatedUser:
    """The SDK's user for one static token. The principal is the user name (two tokens of one user are
    one principal); the one unnamed token of a one-user server is a principal of its own. The access
    token object holds a digest, never the token."""
    digest = hashlib.sha256(token.encode()).hexdigest()[:16]
    return AuthenticatedUser(
        AccessToken(
            token=f"sha256:{digest}",
            client_id=CLIENT_ID,
            scopes=sorted(scopes),
            subject=name or "(one user)",
        )
    )


def scope_needed(op: Operation) -> str:
    """The scope (role) a tool needs: gpu.write for a tool that changes anything, else gpu.read."""
    return WRITE if op.mutating else READ


class BearerAuth:
    """Refuses every HTTP request without a valid `Authorization: Bearer <token>` (lifespan passes through).

    `tokens` maps each static token to its user name (None: the one-user form, no name), every scope, or
    to (name, scopes). Every static token is compared in constant time. The scheme is case-insensitive
    (RFC 7235). With `oauth` (the issuer's `TokenVerifier`) a token that is no static one is verified as
    an access token of the issuer; a refusal then carries the RFC 9728 challenge
    `WWW-Authenticate: Bearer resource_metadata="..."` so MCP clients discover where to sign in. Without
    OAuth the 401 carries `WWW-Authenticate: Bearer realm="gpu-mcp"` (RFC 6750 §3; `error="invalid_token"`
    when a token was sent): no `resource_metadata`, so nothing invites a client to look for an
    authorization server. A caller without gpu.read is answered 403 `insufficient_scope`."""

    def __init__(
        self,
        app: ASGIApp,
        tokens: str | Mapping[str, StaticUser],
        *,
        oauth: TokenVerifier | None = None,
        resource_metadata_url: str | None = None,
    ) -> None:
        users: dict[str, StaticUser] = {tokens: None} if isinstance(tokens, str) else dict(tokens)
        if (not users and oauth is None) or any(len(token.strip()) < MIN_TOKEN_LENGTH for token in users):
            # Settings refuse these first; this is the last line: an empty token would match anyone.
            raise ValueError(f"every bearer token needs at least {MIN_TOKEN_LENGTH} characters")
        # AuthContextMiddleware puts scope["user"] where the SDK's requestState binding looks for it.
        self.app = AuthContextMiddleware(app)
        self.oauth = oauth
        self.resource_metadata_url = resource_metadata_url
        self.tokens: list[tuple[bytes, str | None, AuthenticatedUser]] = []
        for token, user in users.items():
            name, scopes = user if isinstance(user, tuple) else (user, ALL_SCOPES)
            self.tokens.append((token.encode(), name, authenticated_user(token, name, scopes)))

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
        return found and bool(given), name, principal

    async def _verify(self, scope: Scope) -> tuple[bool, str | None, AuthenticatedUser | None]:
        found, name, principal = self._find(scope)
        given = self._token(scope)
        if found or self.oauth is None or not given:
            return found, name, principal
        try:
            access = await self.oauth.verify_token(given.decode("ascii"))
        except UnicodeDecodeError:
            access = None
        except (
            Exception
        ) as exc:  # a verifier that fails refuses (fails closed); its type only, never the token
            logging.getLogger("gpu_tools.oauth").warning(
                "access token verification failed: %s", type(exc).__name__
            )
            access = None
        if access is None:
            return False, None, None
        return True, access.subject, AuthenticatedUser(access)

    def _challenge(self, **params: str) -> list[tuple[bytes, bytes]]:
        """RFC 6750 §3: every 401 (and the 403 for a missing scope) names the Bearer scheme; with OAuth
        it also points at the protected-resource metadata (RFC 9728), without it names the realm."""
        if self.oauth is None:
            params = {"realm": REALM, **params}
        elif self.resource_metadata_url:
            params["resource_metadata"] = self.resource_metadata_url
        value = "Bearer " + ", ".join(f'{key}="{text}"' for key, text in params.items())
        return [(b"www-authenticate", value.encode())]

    async def _refuse(self, send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), *headers],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found, name, principal = await self._verify(scope)
            if not found or principal is None:
                given = bool(self._token(scope))
                challenge = self._challenge(error="invalid_token") if given else self._challenge()
                body = UNAUTHORIZED_OAUTH if self.oauth is not None else UNAUTHORIZED
                await self._refuse(send, 401, body, challenge)
                return
            scopes = frozenset(principal.scopes)
            if READ not in scopes:
                body = json.dumps(
                    {
                        "error": "insufficient_scope",
                        "error_description": f"this server needs the scope {READ}",
                    }
                ).encode()
                await self._refuse(send, 403, body, self._challenge(error="insufficient_scope", scope=READ))
                return
            scope = {
                **scope,
                USER_KEY: name,
                SCOPES_KEY: scopes,
                "user": principal,
                "auth": AuthCredentials(sorted(scopes)),
            }
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


def scopes_of(request: Any) -> frozenset[str] | None:
    """The scopes (roles) BearerAuth found for this request (None over stdio and in process: there the
    person at the keyboard holds every role)."""
    scope = getattr(request, "scope", None)
    found = scope.get(SCOPES_KEY) if isinstance(scope, dict) else None
    return found if isinstance(found, frozenset) else None


class ScopeGuard:
    """Server middleware, outermost of ours: each caller's `tools/list` holds only the tools its scopes
    allow, and a `tools/call` of a tool beyond them is refused before anything is planned (a mutating
    one journaled as refused, naming the caller and the scope it lacks)."""

    def __init__(self, tk: Toolkit) -> None:
        self.tk = tk

    def _allowed(self, name: str, scopes: frozenset[str]) -> tuple[bool, Operation | None]:
        try:
            op = self.tk.registry.get(name)
        except GpuToolsError:
            return READ in scopes, None  # a tool of the SDK's own (none today): a read
        return scope_needed(op) in scopes, op

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        request = getattr(ctx, "request", None)
        scopes = scopes_of(request)
        if scopes is None or scopes >= ALL_SCOPES:
            return await call_next(ctx)
        if ctx.method == "tools/list":
            result = await call_next(ctx)
            return self._filter(result, scopes)
        if ctx.method == "tools/call":
            params = ctx.params or {}
            name = params.get("name")
            if isinstance(name, str):
                allowed, op = self._allowed(name, scopes)
                if not allowed and op is not None:
                    need = scope_needed(op)
                    reason = (
                        f"the caller lacks the scope {need} that {name} needs; nothing was planned or sent"
                    )
                    if op.mutating:
                        arguments = params.get("arguments")
                        await self.tk.gate.journal_refusal(
                            op,
                            arguments if isinstance(arguments, dict) else {},
                            reason,
                            actor=user_of(request),
                            plan_it=False,
                        )
                    return CallToolResult(
                        content=[
                            TextContent(type="text", text=f"refused: {reason}. Ask for the role {need}.")
                        ],
                        is_error=True,
                    )
        return await call_next(ctx)

    def _filter(self, result: HandlerResult, scopes: frozenset[str]) -> HandlerResult:
        def keep(tool: Any) -> bool:
            name = tool.get("name") if isinstance(tool, dict) else getattr(tool, "name", None)
            return isinstance(name, str) and self._allowed(name, scopes)[0]

        if isinstance(result, dict) and isinstance(result.get("tools"), list):
            return {**result, "tools": [tool for tool in result["tools"] if keep(tool)]}
        tools = getattr(result, "tools", None)
        if isinstance(result, BaseModel) and isinstance(tools, list):
            return result.model_copy(update={"tools": [tool for tool in tools if keep(tool)]})
        return result


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
    requestState boundary, so it sees what the boundary refuses, and `ScopeGuard` outside both."""
    chain = server.middleware
    boundary = next((i for i, m in enumerate(chain) if isinstance(m, RequestStateBoundary)), 0)
    chain.insert(boundary, JournalStateRefusals(server.toolkit))
    chain.insert(boundary, ScopeGuard(server.toolkit))
