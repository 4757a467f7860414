"""Who is asking, over HTTP: bearer tokens, each standing for a user name.

`BearerAuth` refuses every HTTP request without a known token and puts the token's user in the
ASGI scope; the tools read it from the request (`user_of`) to journal who asked and who confirmed,
and a confirmation's sealed `requestState` is bound to it, so one user cannot answer another's.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

USER_KEY = "gpu_tools.user"  # the ASGI scope key BearerAuth fills
UNAUTHORIZED = (
    b'{"error": "missing or wrong bearer token: send Authorization: Bearer <token> (a token from '
    b'http_tokens, GPU_TOOLS_HTTP_TOKEN, or the one in the file gpu-mcp named at start)"}'
)


class BearerAuth:
    """Refuses every HTTP request without `Authorization: Bearer <token>` (lifespan passes through).

    `tokens` maps each accepted token to its user name (None: the one-user form, no name). Every
    token is compared in constant time. The scheme is case-insensitive (RFC 7235). The 401 carries
    no `WWW-Authenticate: Bearer` challenge: this server offers no OAuth, and that challenge sends
    OAuth-capable clients looking for authorization-server metadata that does not exist."""

    def __init__(self, app: ASGIApp, tokens: str | Mapping[str, str | None]) -> None:
        self.app = app
        users = {tokens: None} if isinstance(tokens, str) else dict(tokens)
        self.tokens = [(token.encode(), user) for token, user in users.items()]

    @staticmethod
    def _token(scope: Scope) -> bytes:
        header = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, token = header.partition(b" ")
        return token.strip() if scheme.lower() == b"bearer" else b""

    def user(self, scope: Scope) -> tuple[bool, str | None]:
        given = self._token(scope)
        found, name = False, None
        for token, user in self.tokens:  # no early exit: the time taken names no token
            if hmac.compare_digest(given, token):
                found, name = True, user
        return found, name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found, name = self.user(scope)
            if not found:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": UNAUTHORIZED})
                return
            scope = {**scope, USER_KEY: name}
        await self.app(scope, receive, send)


def user_of(request: Any) -> str | None:
    """The user BearerAuth found for this request (None over stdio, in process, or one-user HTTP)."""
    scope = getattr(request, "scope", None)
    return scope.get(USER_KEY) if isinstance(scope, dict) else None
