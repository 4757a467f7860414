"""Signing in to the approval page through the team's identity provider: OpenID Connect, authorization
code with PKCE (S256), when `oauth_issuer` and `approval_oidc_client_id` are set.

The page sends the person to the provider's authorization endpoint (from its discovery document) with
a fresh `state`, `nonce` and PKCE challenge, and the server's resource indicator (RFC 8707: the access
token is for the MCP server, whose scopes are the roles; left out when `oauth_audience` is set, as
for Entra ID, whose audience comes from the scopes asked for and which refuses `resource`). At the callback the `state` must be one this
process made, unused and unexpired, for this very browser (a SameSite=Lax cookie carries its binding);
the code is exchanged at the token endpoint with the PKCE verifier; the ID token is verified (the
issuer's keys, `iss`, `aud` = the page's client id, `exp`, the `nonce` sent); and the access token is
verified exactly as the HTTP server verifies a client's (the same `TokenVerifier`, handed in by the
front): its user (`oauth_user_claim`, else `sub`) is who signs in, its scopes (and `oauth_roles_claim`)
what they may do. The ID token's `sub` must be the access token's.

The verifier comes from the front (`mcp_server.oauth.OAuthVerifier`): this module only runs the flow.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx

log = logging.getLogger("gpu_tools.approvals")

FLOW_TTL = timedelta(minutes=10)  # from the redirect to the provider to the callback
MAX_FLOWS = 1000  # sign-ins started and not finished, kept at most (the oldest are dropped)


class SignInRefused(Exception):
    """The provider's answer does not sign anyone in; the message says why (never a token)."""


class Verifier(Protocol):
    """What the flow needs of the resource server's verifier (mcp_server.oauth.OAuthVerifier)."""

    issuer: str

    async def metadata(self) -> dict[str, Any]: ...

    async def verify_token(self, token: str) -> Any: ...  # an AccessToken (subject, scopes, claims) or None

    async def verify_id_token(self, token: str, *, client_id: str, nonce: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Identity:
    user: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class Flow:
    code_verifier: str
    nonce: str
    binding: str  # sha256 of the browser's flow cookie
    next_url: str
    expires: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class ProviderSignIn:
    """The approval page's OpenID Connect client (one per process; flows live in its memory)."""

    def __init__(
        self,
        verifier: Verifier,
        *,
        client_id: str,
        client_secret: str | None,
        scopes: str,
        resource: str | None,
        clock: Callable[[], datetime],
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.verifier = verifier
        self.client_id = client_id
        self.client_secret = client_secret
        self.scopes = scopes
        self.resource = resource
        self.clock = clock
        self.timeout = timeout
        self.transport = transport
        self._flows: dict[str, Flow] = {}  # state -> flow
        self._lock = threading.Lock()

    @property
    def issuer(self) -> str:
        return self.verifier.issuer

    async def _metadata(self) -> dict[str, Any]:
        try:
            return await self.verifier.metadata()
        except (LookupError, httpx.HTTPError, ValueError) as exc:
            raise SignInRefused(
                f"the provider's metadata cannot be read now ({type(exc).__name__})"
            ) from None

    async def begin(self, redirect_uri: str, next_url: str, binding: str) -> str:
        """The provider's authorization URL for a new sign-in of the browser holding `binding`."""
        meta = await self._metadata()
        endpoint = meta.get("authorization_endpoint")
        if not isinstance(endpoint, str):
            raise SignInRefused("the provider's metadata names no authorization_endpoint")
        methods = meta.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise SignInRefused("the provider does not offer PKCE with S256")
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        code_verifier = secrets.token_urlsafe(64)  # 86 characters of the unreserved set (RFC 7636)
        now = self.clock()
        with self._lock:
            self._flows = {k: f for k, f in self._flows.items() if f.expires > now}
            while len(self._flows) >= MAX_FLOWS:
                self._flows.pop(next(iter(self._flows)))
            self._flows[state] = Flow(code_verifier, nonce, _digest(binding), next_url, now + FLOW_TTL)
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": self.scopes,
            "state": state,
            "nonce": nonce,
            "code_challenge": _b64(hashlib.sha256(code_verifier.encode()).digest()),
            "code_challenge_method": "S256",
        }
        if self.resource is not None:
            query["resource"] = self.resource
        return endpoint + ("&" if "?" in endpoint else "?") + urlencode(query)

    async def finish(
        self, *, state: str, code: str, iss: str | None, binding: str, redirect_uri: str
    ) -> tuple[Identity, str]:
        """The person the provider signed in (and where they were going), or SignInRefused. The
        `state` is used up whatever happens: a callback replayed is refused."""
        with self._lock:
            flow = self._flows.pop(state, None) if state else None
        if flow is None or flow.expires < self.clock():
            raise SignInRefused("this sign-in is unknown, used or expired: sign in again")
        if not binding or not hmac.compare_digest(_digest(binding), flow.binding):
            raise SignInRefused("this sign-in was started in another browser: sign in again")
        if iss is not None and iss != self.issuer:  # RFC 9207: an answer from another provider
            raise SignInRefused("the answer came from another issuer than this server's")
        meta = await self._metadata()
        endpoint = meta.get("token_endpoint")
        if not isinstance(endpoint, str):
            raise SignInRefused("the provider's metadata names no token_endpoint")
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": flow.code_verifier,
        }
        if self.resource is not None:
            form["resource"] = self.resource
        auth: tuple[str, str] | None = None
        if self.client_secret is None:
            form["client_id"] = self.client_id
        else:
            auth = (self.client_id, self.client_secret)
        try:
            async with httpx.AsyncClient(
                transport=self.transport, timeout=self.timeout, follow_redirects=False
            ) as http:
                response = await http.post(
                    endpoint, data=form, auth=auth, headers={"Accept": "application/json"}
                )
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SignInRefused(
                f"the provider's token endpoint did not answer ({type(exc).__name__})"
            ) from None
        if response.status_code != 200 or not isinstance(answer, dict):
            error = answer.get("error") if isinstance(answer, dict) else None
            raise SignInRefused(f"the provider refused the code ({str(error or response.status_code)[:80]})")
        id_token, access_token = answer.get("id_token"), answer.get("access_token")
        if not isinstance(id_token, str) or not isinstance(access_token, str):
            raise SignInRefused("the provider's answer holds no ID token or no access token")
        try:
            claims = await self.verifier.verify_id_token(id_token, client_id=self.client_id, nonce=flow.nonce)
        except Exception as exc:  # every refusal of PyJWT's, and a key that cannot be fetched
            raise SignInRefused(f"the ID token does not verify ({exc})") from None
        try:
            access = await self.verifier.verify_token(access_token)
        except Exception as exc:  # a verifier that fails refuses (its type only, never the token)
            log.warning("approval page: access token verification failed: %s", type(exc).__name__)
            access = None
        if access is None:
            raise SignInRefused(
                "the access token is not one for this server (its audience, issuer or signature): "
                "check that the provider issues JWT access tokens for the server's resource"
            )
        if (access.claims or {}).get("sub") != claims.get("sub"):
            raise SignInRefused("the ID token and the access token name different users")
        return Identity(str(access.subject), frozenset(access.scopes)), flow.next_url
