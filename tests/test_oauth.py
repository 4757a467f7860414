"""`gpu-mcp --transport http` as an OAuth 2.1 resource server, with roles as scopes.

One server process trusts a local issuer (metadata and JWKS served by the test, tokens minted with
PyJWT): it publishes RFC 9728 metadata, answers 401 with the `resource_metadata` challenge, refuses
every bad token (expired, not yet valid, another audience, another issuer, another key, `alg: none`,
HS256 keyed with the public key) before anything is planned, and shows and runs for each caller only
the tools its scopes allow. Static bearer tokens keep working beside it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import jwt
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from gpu_tools.journal import Journal
from gpu_tools.sandbox import SandboxServer
from gpu_tools.settings import Settings
from mcp_server.oauth import OAuthVerifier
from tests.conftest import mutating_requests
from tests.mcp_helpers import Human, error_text, structured
from tests.oauth_helpers import Issuer, new_key, public_pem, running_issuer
from tests.test_cli import free_port, running

pytestmark = pytest.mark.anyio

CREATE = "nebius_create_endpoint"
ARGS = {
    "name": "ep-1",
    "model_name": "openai/gpt-oss-20b",
    "flavor_name": "base",
    "gpu_type": "gpu-h100-sxm",
}
ADMIN_TOKEN = "tok-admin-0123456789"
VIEWER_TOKEN = "tok-viewer-0123456789"
STATIC = {ADMIN_TOKEN: "root", VIEWER_TOKEN: {"user": "viewer", "scopes": ["gpu.read"]}}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}


class Server:
    def __init__(self, url: str, home: Path, issuer: Issuer) -> None:
        self.url, self.home, self.issuer = url, home, issuer
        self.base = url.removesuffix("/mcp")

    def rows(self) -> list[Any]:
        journal = Journal.open(self.home / "journal.sqlite3")
        try:
            return journal.entries(limit=100)[0]
        finally:
            journal.close()


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with running_issuer() as found:
        yield found


def server_env(home: Path, sandbox: SandboxServer, issuer: Issuer, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "GPU_TOOLS_HOME": str(home),
        "NEBIUS_API_KEY": "sandbox-key",
        "NEBIUS_BASE_URL": f"{sandbox.url}/nebius",
        "NEBIUS_GPU_USD_PER_HOUR": json.dumps({"gpu-h100-sxm": 6.0}),
        "GPU_TOOLS_HTTP_TOKENS": json.dumps(STATIC),
        "GPU_TOOLS_OAUTH_ISSUER": issuer.url,
        "GPU_TOOLS_APPROVAL_OIDC_CLIENT_ID": "gpu-tools-page",
        "GPU_TOOLS_OAUTH_JWKS_MIN_REFRESH_SECONDS": "3600",
        **extra,
    }


@contextmanager
def serving(sandbox: SandboxServer, issuer: Issuer, home: Path, **extra: str) -> Iterator[Server]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    env = server_env(home, sandbox, issuer, **extra)
    with running([sys.executable, "-m", "mcp_server", "--transport", "http", "--port", str(port)], env, url):
        yield Server(url, home, issuer)


@pytest.fixture
def server(sandbox: SandboxServer, issuer: Issuer, tmp_path: Path) -> Iterator[Server]:
    with serving(sandbox, issuer, tmp_path / "server") as found:
        yield found


def client_for(server: Server, token: str, **kw: Any) -> tuple[httpx2.AsyncClient, Client]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
    return http, Client(streamable_http_client(server.url, http_client=http), **kw)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_with_public_key(issuer: Issuer, audience: str) -> str:
    """The key-confusion attack: HS256 keyed with the issuer's public key (PyJWT refuses to mint it)."""
    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": issuer.kid}).encode())
    claims = {"iss": issuer.url, "aud": audience, "sub": "x", "email": "evil@example.com", "exp": now + 300}
    body = b64(json.dumps({**claims, "scope": "gpu.read gpu.write"}).encode())
    signature = hmac.new(public_pem(issuer.key), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64(signature)}"


def post_init(server: Server, token: str | None) -> httpx.Response:
    headers = dict(MCP_HEADERS)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(server.url, json=INIT, headers=headers, timeout=10)


# ---- discovery ---------------------------------------------------------------------------------------------
def test_protected_resource_metadata_and_the_challenge(server: Server) -> None:
    for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
        meta = httpx.get(server.base + path, timeout=10).json()
        assert meta["resource"] == server.url
        assert meta["authorization_servers"] == [server.issuer.url]
        assert meta["scopes_supported"] == ["gpu.read", "gpu.write", "gpu.approve", "gpu.admin"]
        assert meta["bearer_methods_supported"] == ["header"]
    refused = post_init(server, None)
    assert refused.status_code == 401
    challenge = refused.headers["www-authenticate"]
    assert challenge == f'Bearer resource_metadata="{server.base}/.well-known/oauth-protected-resource/mcp"'


# ---- bad tokens: each 401, nothing planned -------------------------------------------------------------------
def test_every_bad_token_is_refused_and_nothing_is_planned(server: Server, sandbox: SandboxServer) -> None:
    issuer, aud = server.issuer, server.url
    now = time.time()
    other_key = new_key()
    bad = {
        "expired": issuer.token(aud, lifetime=-120),
        "not yet valid": issuer.token(aud, not_before=now + 600),
        "another audience": issuer.token("https://other.example.com/mcp"),
        "another issuer": issuer.token(aud, issuer="https://evil.example.com"),
        "another key, known kid": issuer.token(aud, key=other_key),
        "another key, unknown kid": issuer.token(aud, key=other_key, kid="rogue"),
        "alg none": jwt.encode(
            {
                "iss": issuer.url,
                "aud": aud,
                "exp": int(now) + 300,
                "email": "x@example.com",
                "scope": "gpu.read",
            },
            None,
            algorithm="none",
        ),
        "HS256 keyed with the public key": hs256_with_public_key(issuer, aud),
        "no exp": issuer.token(aud, lifetime=0, exp=None),
        "not a token": "x" * 40,
    }
    for why, token in bad.items():
        response = post_init(server, token)
        assert response.status_code == 401, why
        assert 'error="invalid_token"' in response.headers["www-authenticate"], why
        assert "resource_metadata=" in response.headers["www-authenticate"], why
    assert server.rows() == [] and mutating_requests(sandbox) == []
    assert issuer.jwks_fetches == 1  # the unknown kid did not fetch again within the refresh interval


def test_a_token_without_any_gpu_scope_is_403_with_the_scope_needed(server: Server) -> None:
    response = post_init(server, server.issuer.token(server.url, scope="openid email"))
    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="gpu.read"' in challenge


# ---- roles as scopes -----------------------------------------------------------------------------------------
async def test_a_reader_sees_no_mutating_tool_and_its_create_is_refused_and_journaled(
    server: Server, sandbox: SandboxServer
) -> None:
    http, client = client_for(server, server.issuer.token(server.url, scope="openid gpu.read"))
    async with http, client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert "list_offers" in names and "history" in names
        assert not names & {CREATE, "delete_resource", "stop_resource", "update_resource", "reap_expired"}
        refused = await client.call_tool(CREATE, ARGS)
        assert "gpu.write" in error_text(refused)
    assert mutating_requests(sandbox) == []
    (row,) = server.rows()
    assert (row.outcome, row.actor, row.operation) == ("refused", "reader@example.com", CREATE)
    assert "lacks the scope gpu.write" in (row.error or "")
    assert row.target == "(not planned)"


async def test_a_writer_creates_and_the_journal_names_the_signed_in_user(
    server: Server, sandbox: SandboxServer
) -> None:
    token = server.issuer.token(server.url, scope="gpu.read gpu.write", email="op@example.com")
    http, client = client_for(server, token, elicitation_callback=Human(), mode="legacy")
    async with http, client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert CREATE in names
        made = structured(await client.call_tool(CREATE, ARGS))
    assert made["outcome"] == "done" and len(mutating_requests(sandbox)) == 1
    (row,) = server.rows()
    assert (row.outcome, row.actor, row.confirmed_by) == ("ok", "op@example.com", "op@example.com")


async def test_the_user_falls_back_to_sub_and_a_rotated_key_is_fetched(
    sandbox: SandboxServer, issuer: Issuer, tmp_path: Path
) -> None:
    with serving(sandbox, issuer, tmp_path, GPU_TOOLS_OAUTH_JWKS_MIN_REFRESH_SECONDS="0") as server:
        await _rotation(server)
    (row,) = server.rows()
    assert (row.outcome, row.actor) == ("refused", "user-1")  # no email claim: the subject


async def _rotation(server: Server) -> None:
    issuer = server.issuer
    http, client = client_for(server, issuer.token(server.url, email=None))
    async with http, client:
        assert (await client.list_tools()).tools
    issuer.rotate()  # a new kid: the server fetches the JWKS again (once), and accepts it
    http, client = client_for(server, issuer.token(server.url, scope="gpu.read", email=None))
    async with http, client:
        refused = await client.call_tool("delete_resource", {"provider": "nebius", "resource_id": "x"})
        assert "gpu.write" in error_text(refused)
    assert issuer.jwks_fetches == 2


async def test_static_tokens_keep_working_with_their_scopes(server: Server, sandbox: SandboxServer) -> None:
    http, client = client_for(server, VIEWER_TOKEN)
    async with http, client:
        assert CREATE not in {tool.name for tool in (await client.list_tools()).tools}
        assert (await client.call_tool(CREATE, ARGS)).is_error
    http, client = client_for(server, ADMIN_TOKEN)
    async with http, client:
        assert CREATE in {tool.name for tool in (await client.list_tools()).tools}
    (row,) = server.rows()
    assert (row.outcome, row.actor) == ("refused", "viewer")
    assert mutating_requests(sandbox) == []


# ---- configuration that would fail open ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"GPU_TOOLS_OAUTH_ISSUER": "http://idp.example.com"}, "oauth_issuer must use https"),
        (
            {"GPU_TOOLS_OAUTH_ISSUER": "https://idp.example.com", "GPU_TOOLS_OAUTH_AUDIENCE": " "},
            "oauth_audience",
        ),
        ({"GPU_TOOLS_OAUTH_AUDIENCE": "https://x.example.com/mcp"}, "oauth_audience is set but oauth_issuer"),
        (
            {
                "GPU_TOOLS_OAUTH_ISSUER": "https://idp.example.com",
                "GPU_TOOLS_HTTP_PUBLIC_URL": "http://gpu.example.com/mcp",
            },
            "http_public_url must use https",
        ),
        ({"GPU_TOOLS_OAUTH_ISSUER": "https://idp.example.com", "HOST": "0.0.0.0"}, "set http_public_url"),
        # The approval page signs people in through the same provider, or the server does not start.
        ({"GPU_TOOLS_OAUTH_ISSUER": "https://idp.example.com"}, "approval_oidc_client_id is not"),
        ({"GPU_TOOLS_APPROVAL_OIDC_CLIENT_ID": "page"}, "approval_oidc_client_id is set but oauth_issuer"),
        (
            {
                "GPU_TOOLS_OAUTH_ISSUER": "https://idp.example.com",
                "GPU_TOOLS_APPROVAL_OIDC_CLIENT_ID": "page",
                "GPU_TOOLS_APPROVAL_OIDC_SCOPES": "email gpu.approve",
            },
            "approval_oidc_scopes must hold openid",
        ),
        (
            {
                "GPU_TOOLS_OAUTH_ISSUER": "https://idp.example.com",
                "GPU_TOOLS_APPROVAL_OIDC_CLIENT_ID": "page",
                "GPU_TOOLS_HTTP_PUBLIC_URL": "https://gpu.example.com/mcp",
                "HOST": "0.0.0.0",
            },
            "set approval_origin",
        ),
        (
            {"GPU_TOOLS_OAUTH_ISSUER": "https://idp.example.com", "GPU_TOOLS_OAUTH_ALGORITHMS": '["HS256"]'},
            "oauth_algorithms",
        ),
        (
            {
                "GPU_TOOLS_OAUTH_ISSUER": "https://idp.example.com",
                "GPU_TOOLS_OAUTH_INTROSPECTION_URL": "https://idp.example.com/introspect",
            },
            "oauth_introspection_url needs oauth_client_id",
        ),
    ],
)
def test_configuration_that_would_fail_open_refuses_to_start(
    tmp_path: Path, env: dict[str, str], named: str
) -> None:
    env = dict(env)
    host = env.pop("HOST", "127.0.0.1")
    full = {"PATH": os.environ.get("PATH", ""), "GPU_TOOLS_HOME": str(tmp_path), **env}
    args = [
        sys.executable,
        "-m",
        "mcp_server",
        "--transport",
        "http",
        "--host",
        host,
        "--port",
        str(free_port()),
    ]
    done = subprocess.run(args, env=full, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert named in line


# ---- the verifier alone: key refresh rate, introspection ----------------------------------------------------
def verifier_for(issuer: Issuer, clock: list[float], **settings: Any) -> OAuthVerifier:
    values = {"oauth_issuer": issuer.url, "oauth_jwks_min_refresh_seconds": 30.0, **settings}
    return OAuthVerifier(Settings(**values), AUDIENCE, clock=lambda: clock[0])


AUDIENCE = "https://gpu.example.com/mcp"


async def test_unknown_key_ids_fetch_the_keys_at_most_once_per_interval(issuer: Issuer) -> None:
    clock = [1000.0]
    verifier = verifier_for(issuer, clock)
    try:
        assert (await verifier.verify_token(issuer.token(AUDIENCE))) is not None
        rogue = issuer.token(AUDIENCE, key=new_key(), kid="rogue")
        for _ in range(5):
            assert await verifier.verify_token(rogue) is None
        assert issuer.jwks_fetches == 1
        issuer.rotate()
        assert await verifier.verify_token(issuer.token(AUDIENCE)) is None  # too soon to fetch again
        clock[0] += 31
        access = await verifier.verify_token(issuer.token(AUDIENCE, scope="gpu.read gpu.write openid"))
        assert access is not None and issuer.jwks_fetches == 2
        assert (access.subject, access.scopes) == ("reader@example.com", ["gpu.read", "gpu.write"])
        assert access.token.startswith("sha256:")  # the token itself is never kept
    finally:
        await verifier.aclose()


async def test_roles_come_from_a_nested_claim(issuer: Issuer) -> None:
    verifier = verifier_for(issuer, [0.0], oauth_roles_claim="realm_access.roles")
    try:
        token = issuer.token(
            AUDIENCE, scope="openid", realm_access={"roles": ["gpu.read", "gpu.approve", "x"]}
        )
        access = await verifier.verify_token(token)
        assert access is not None and access.scopes == ["gpu.read", "gpu.approve"]
    finally:
        await verifier.aclose()


async def test_opaque_tokens_go_through_introspection(issuer: Issuer) -> None:
    verifier = verifier_for(
        issuer,
        [0.0],
        oauth_introspection_url=f"{issuer.url}/introspect",
        oauth_client_id="gpu-mcp",
        oauth_client_secret="s" * 20,
    )
    now = int(time.time())
    good = {
        "active": True,
        "iss": issuer.url,
        "aud": AUDIENCE,
        "exp": now + 60,
        "sub": "u",
        "scope": "gpu.read",
    }
    issuer.introspected = {
        "opaque-good": {**good, "email": "i@example.com"},
        "opaque-inactive": {**good, "active": False},
        "opaque-elsewhere": {**good, "aud": "https://other.example.com"},
        "opaque-expired": {**good, "exp": now - 600},
        "opaque-no-aud": {key: value for key, value in good.items() if key != "aud"},
    }
    try:
        access = await verifier.verify_token("opaque-good")
        assert access is not None and (access.subject, access.scopes) == ("i@example.com", ["gpu.read"])
        for token in ("opaque-inactive", "opaque-elsewhere", "opaque-expired", "opaque-no-aud", "unknown"):
            assert await verifier.verify_token(token) is None, token
    finally:
        await verifier.aclose()


async def test_an_issuer_that_is_down_is_asked_at_most_once_per_interval(issuer: Issuer) -> None:
    asked: list[str] = []

    def down(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(503)

    clock = [0.0]
    settings = Settings(oauth_issuer=issuer.url, oauth_jwks_min_refresh_seconds=30.0)
    verifier = OAuthVerifier(settings, AUDIENCE, transport=httpx.MockTransport(down), clock=lambda: clock[0])
    try:
        token = issuer.token(AUDIENCE)
        for _ in range(5):
            assert await verifier.verify_token(token) is None  # fails closed
        first = len(asked)
        assert first >= 1
        clock[0] += 31
        assert await verifier.verify_token(token) is None
        assert len(asked) == 2 * first
    finally:
        await verifier.aclose()
