"""OAuth 2.1 resource server: access tokens of the team's identity provider, verified with PyJWT.

`OAuthVerifier` is the SDK's `TokenVerifier` for one issuer. It discovers the issuer's metadata
(`/.well-known/openid-configuration`, else `/.well-known/oauth-authorization-server`), fetches its JWKS,
keeps it, and fetches it again when a token names a key id it does not know (at most once every
`oauth_jwks_min_refresh_seconds`). A JWT access token is accepted only when PyJWT verifies its signature
against that JWKS with an algorithm from the asymmetric allow-list, and its `iss`, `aud` (must hold the
audience), `exp` and `nbf` (with a small leeway). An opaque token goes to RFC 7662 introspection when
`oauth_introspection_url` is set. Every failure is a refusal (None): never a partial user.

The user is the `oauth_user_claim` (default `email`, else `sub`); the scopes are `scope` (space
separated) or `scp`, plus the roles in `oauth_roles_claim` when set.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from mcp.server.auth.provider import AccessToken

from gpu_tools.settings import SCOPES, Settings

log = logging.getLogger("gpu_tools.oauth")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
JWKS_MAX_AGE = 3600.0  # keys are fetched again after an hour even when every kid is known


class OAuthConfigError(ValueError):
    """Configuration that would fail open; the message names the setting."""


def is_loopback_url(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOOPBACK_HOSTS


def check_https(name: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OAuthConfigError(f"{name} is not an http(s) URL")
    if parts.scheme != "https" and not is_loopback_url(url):
        raise OAuthConfigError(f"{name} must use https (plain http is accepted on loopback only)")


def check_oauth_settings(settings: Settings, resource: str) -> str | None:
    """The audience tokens must hold, after refusing configuration that would fail open (None: no OAuth)."""
    if settings.oauth_issuer is None:
        for name in (
            "oauth_audience",
            "oauth_introspection_url",
            "oauth_roles_claim",
            "approval_oidc_client_id",
            "approval_oidc_client_secret",
        ):
            if getattr(settings, name):
                raise OAuthConfigError(f"{name} is set but oauth_issuer is not: set GPU_TOOLS_OAUTH_ISSUER")
        return None
    check_https("oauth_issuer", settings.oauth_issuer)
    if settings.http_public_url is not None:
        check_https("http_public_url", settings.http_public_url)  # tokens never travel in clear
    audience = settings.oauth_audience if settings.oauth_audience is not None else resource
    if not audience.strip():
        raise OAuthConfigError("oauth_audience is empty: every token's audience would be accepted")
    if not settings.oauth_user_claim.strip():
        raise OAuthConfigError("oauth_user_claim is empty")
    if settings.oauth_introspection_url is not None:
        check_https("oauth_introspection_url", settings.oauth_introspection_url)
        if not settings.oauth_client_id or settings.oauth_client_secret is None:
            raise OAuthConfigError(
                "oauth_introspection_url needs oauth_client_id and oauth_client_secret (introspection "
                "without client authentication would be refused or answer anyone)"
            )
    return audience


def metadata_urls(issuer: str) -> list[str]:
    """Where an issuer's metadata is: RFC 8414 (path inserted) and OpenID Connect Discovery forms."""
    parts = urlsplit(issuer.rstrip("/"))
    root, path = f"{parts.scheme}://{parts.netloc}", parts.path
    urls = [
        f"{root}/.well-known/oauth-authorization-server{path}",
        f"{root}/.well-known/openid-configuration{path}",
    ]
    urls.append(f"{issuer.rstrip('/')}/.well-known/openid-configuration")
    return list(dict.fromkeys(urls))


def claim_at(claims: dict[str, Any], path: str) -> Any:
    """A claim by name, or by dotted path into nested objects (`realm_access.roles`)."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def words(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


class OAuthVerifier:
    """The SDK's `TokenVerifier` for one issuer's access tokens (JWT, or opaque via introspection)."""

    def __init__(
        self,
        settings: Settings,
        audience: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if settings.oauth_issuer is None:
            raise RuntimeError("internal error: expected settings.oauth_issuer is not None")
        self.issuer = settings.oauth_issuer
        self.audience = audience
        self.user_claim = settings.oauth_user_claim
        self.roles_claim = settings.oauth_roles_claim
        self.algorithms = list(settings.oauth_algorithms)
        self.leeway = settings.oauth_leeway_seconds
        self.min_refresh = settings.oauth_jwks_min_refresh_seconds
        self.introspection_url = settings.oauth_introspection_url
        secret = settings.oauth_client_secret
        self.client_auth = (
            (settings.oauth_client_id or "", secret.get_secret_value()) if secret is not None else None
        )
        self.transport = transport
        self.clock = clock
        self.timeout = settings.http_timeout
        self._client: httpx.AsyncClient | None = None
        self._metadata: dict[str, Any] | None = None
        self._keys: dict[str, dict[str, Any]] = {}  # the JWKS's signing keys by kid, as published
        self._anonymous: list[dict[str, Any]] = []  # keys without a kid
        self._fetched_at: float | None = None
        self._tried_at: float | None = None
        self._lock = asyncio.Lock()

    # ---- fetching -----------------------------------------------------------------------------------
    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self.transport, timeout=self.timeout, follow_redirects=False
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def metadata(self) -> dict[str, Any]:
        """The issuer's authorization-server metadata, discovered once (its `issuer` must be ours)."""
        if self._metadata is not None:
            return self._metadata
        problems = []
        for url in metadata_urls(self.issuer):
            try:
                response = await self._http().get(url, headers={"Accept": "application/json"})
            except httpx.HTTPError as exc:
                problems.append(f"{url}: {type(exc).__name__}")
                continue
            if response.status_code != 200:
                problems.append(f"{url}: HTTP {response.status_code}")
                continue
            try:
                found = response.json()
            except ValueError:
                problems.append(f"{url}: not JSON")
                continue
            if not isinstance(found, dict) or found.get("issuer") != self.issuer:
                problems.append(f"{url}: its issuer is not {self.issuer}")
                continue
            jwks_uri = found.get("jwks_uri")
            if isinstance(jwks_uri, str) and not is_loopback_url(self.issuer):
                check_https("the issuer's jwks_uri", jwks_uri)
            self._metadata = found
            return found
        raise LookupError("no usable authorization-server metadata: " + "; ".join(problems))

    async def _fetch_keys(self) -> None:
        meta = await self.metadata()
        jwks_uri = meta.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise LookupError("the issuer's metadata names no jwks_uri")
        response = await self._http().get(jwks_uri, headers={"Accept": "application/json"})
        response.raise_for_status()
        keys: dict[str, dict[str, Any]] = {}
        anonymous: list[dict[str, Any]] = []
        for data in response.json().get("keys", []):
            if not isinstance(data, dict) or data.get("use", "sig") != "sig":
                continue
            if isinstance(data.get("kid"), str):
                keys[data["kid"]] = data
            else:
                anonymous.append(data)
        self._keys, self._anonymous = keys, anonymous
        self._fetched_at = self.clock()

    async def _key(self, kid: str | None) -> dict[str, Any] | None:
        async with self._lock:
            now = self.clock()
            stale = self._fetched_at is None or now - self._fetched_at > JWKS_MAX_AGE
            unknown = kid is not None and kid not in self._keys
            # Every fetch, failed or not, counts: an unknown kid or an issuer that is down makes at most
            # one fetch per min_refresh seconds.
            may_refetch = self._tried_at is None or now - self._tried_at >= self.min_refresh
            if (stale or unknown) and may_refetch:
                self._tried_at = now
                try:
                    await self._fetch_keys()
                except (httpx.HTTPError, LookupError, ValueError) as exc:
                    log.warning("cannot fetch the issuer's keys: %s", exc)
            if kid is not None:
                return self._keys.get(kid)
            candidates = self._anonymous + list(self._keys.values())
            return candidates[0] if len(candidates) == 1 else None

    async def probe(self) -> str:
        """One sentence for the start-up banner: whether the issuer's metadata can be read now."""
        try:
            meta = await self.metadata()
        except (LookupError, httpx.HTTPError, ValueError) as exc:
            return f"its metadata cannot be read now ({exc}); tokens are refused until it can"
        finally:
            await self.aclose()
        return f"keys at {meta.get('jwks_uri')}"

    # ---- TokenVerifier -------------------------------------------------------------------------------
    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            return await self._introspect(token) if self.introspection_url else None
        try:
            return await self._verify_jwt(token, header)
        except jwt.PyJWTError as exc:  # every PyJWT refusal: signature, claims, key type, algorithm
            log.info("access token refused: %s", type(exc).__name__)
            return None

    async def _verify_jwt(self, token: str, header: dict[str, Any]) -> AccessToken | None:
        try:
            claims = await self._decode(token, header, self.audience, ["exp", "iss", "aud"])
        except jwt.InvalidKeyError as exc:
            log.info("access token refused: %s", exc)
            return None
        return self._access(token, claims)

    async def _decode(
        self, token: str, header: dict[str, Any], audience: str, require: list[str]
    ) -> dict[str, Any]:
        """The claims of a JWT of this issuer, once PyJWT verified its signature (an allowed algorithm,
        a key of the issuer's JWKS published for it), `iss`, `aud` (must hold `audience`), `exp` and
        `nbf` with the leeway. Raises a PyJWTError otherwise (InvalidKeyError: no key or algorithm fits)."""
        alg = header.get("alg")
        if alg not in self.algorithms:  # `none`, HMAC (a public key used as a shared secret), unknown
            raise jwt.InvalidKeyError(f"algorithm {alg!r} is not allowed")
        kid = header.get("kid")
        data = await self._key(kid if isinstance(kid, str) else None)
        if data is None:
            raise jwt.InvalidKeyError("no key of the issuer matches")
        if data.get("alg", alg) != alg:  # a key published for one algorithm signs with that one only
            raise jwt.InvalidKeyError("the key is for another algorithm")
        key = jwt.PyJWK(data, algorithm=alg)  # refuses a key whose type does not fit the algorithm
        return jwt.decode(
            token,
            key=key.key,
            algorithms=[alg],
            audience=audience,
            issuer=self.issuer,
            leeway=self.leeway,
            options={"require": require, "verify_signature": True},
        )

    async def verify_id_token(self, token: str, *, client_id: str, nonce: str) -> dict[str, Any]:
        """An OpenID Connect ID token's claims (Core 1.0 §3.1.3.7), verified as access tokens are (the
        issuer's keys, the algorithm allow-list, `iss`, `exp`), for the audience `client_id` (with
        several audiences, `azp` must be `client_id`) and carrying exactly `nonce`. The approval page
        signs people in with it. Raises a PyJWTError when any of that does not hold."""
        claims = await self._decode(
            token, jwt.get_unverified_header(token), client_id, ["exp", "iat", "iss", "aud", "sub"]
        )
        audiences = words(claims.get("aud"))
        if len(audiences) > 1 and claims.get("azp") != client_id:
            raise jwt.InvalidAudienceError("an ID token for several audiences names another azp")
        given = claims.get("nonce")
        if not isinstance(given, str) or not hmac.compare_digest(given.encode(), nonce.encode()):
            raise jwt.InvalidTokenError("the ID token's nonce is not the one this sign-in sent")
        return claims

    async def _introspect(self, token: str) -> AccessToken | None:
        if self.introspection_url is None:
            raise RuntimeError("internal error: expected self.introspection_url is not None")
        try:
            response = await self._http().post(
                self.introspection_url,
                data={"token": token, "token_type_hint": "access_token"},
                auth=self.client_auth or ("", ""),
                headers={"Accept": "application/json"},
            )
            claims = response.json() if response.status_code == 200 else {}
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("token introspection failed: %s", type(exc).__name__)
            return None
        if not isinstance(claims, dict) or claims.get("active") is not True:
            return None
        now = time.time()
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if not isinstance(exp, int | float) or exp + self.leeway < now:
            return None
        if isinstance(nbf, int | float) and nbf - self.leeway > now:
            return None
        if claims.get("iss", self.issuer) != self.issuer:
            return None
        if self.audience not in words(claims.get("aud")) and claims.get("aud") != self.audience:
            return None  # introspection without an audience for us is a token for someone else
        return self._access(token, claims)

    def _access(self, token: str, claims: dict[str, Any]) -> AccessToken | None:
        user = claims.get(self.user_claim) or claims.get("sub")
        if not isinstance(user, str) or not user.strip():
            log.info("access token refused: no %s and no sub claim", self.user_claim)
            return None
        granted = words(claims.get("scope")) + words(claims.get("scp"))
        if self.roles_claim:
            granted += words(claim_at(claims, self.roles_claim))
        scopes = [scope for scope in SCOPES if scope in granted]
        client = claims.get("client_id") or claims.get("azp") or "oauth"
        digest = hashlib.sha256(token.encode()).hexdigest()[:16]
        exp = claims.get("exp")
        return AccessToken(
            token=f"sha256:{digest}",  # never the token itself
            client_id=str(client),
            scopes=scopes,
            expires_at=int(exp) if isinstance(exp, int | float) else None,
            resource=self.audience,
            subject=user.strip(),
            claims={"iss": self.issuer, "sub": claims.get("sub")},
        )
