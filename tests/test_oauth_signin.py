"""Signing in to `gpu-mcp --transport http` through a real identity provider, with the SDK's own client.

`oidc-provider` (pinned in tests/node, run by tests/node/idp.mjs) issues JWT access tokens for the
server's resource indicator. `mcp.Client` over streamable HTTP with `OAuthClientProvider` is given no
token: it discovers the server's protected-resource metadata from the 401, the provider's metadata,
and runs the authorization code flow with PKCE; the provider's login and consent pages are followed
with httpx (the provider logs in the user named by `login_hint` and grants the scopes that user
holds). Then `tools/list` and calls hold only what the user's scopes allow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from gpu_tools.journal import Journal
from gpu_tools.sandbox import SandboxServer
from tests.conftest import mutating_requests, ready_line
from tests.mcp_helpers import Human, error_text, structured
from tests.test_cli import free_port, running
from tests.test_oauth import ARGS, CREATE

pytestmark = pytest.mark.anyio

NODE_DIR = Path(__file__).parent / "node"
CLIENT_ID = "gpu-tools-test"
PAGE_CLIENT_ID = "gpu-tools-approval-page"  # the approval page's own client at the provider
PAGE_SECRET = "page-secret-0123456789abcdef"
MUTATING = {CREATE, "delete_resource", "stop_resource", "start_resource", "update_resource", "reap_expired"}


@dataclass
class Memory:
    """The SDK's TokenStorage, in memory, seeded with the provider's static client."""

    client_info: OAuthClientInformationFull
    tokens: OAuthToken | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


@dataclass
class Browser:
    """Follows the authorization URL through the provider's login and consent, as `user`, up to the
    redirect back to the client, and hands the code to the SDK."""

    user: str
    redirect_uri: str
    seen: list[str] = field(default_factory=list)
    result: AuthorizationCodeResult | None = None

    async def redirect(self, url: str) -> None:
        url = f"{url}&{urlencode({'login_hint': self.user})}"
        self.seen.append(url)
        async with httpx.AsyncClient(follow_redirects=False, timeout=30) as browser:
            for _ in range(12):
                response = await browser.get(url)
                assert response.status_code in (302, 303), (response.status_code, response.text[:300])
                url = urljoin(url, response.headers["location"])
                if url.startswith(self.redirect_uri):
                    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
                    assert "code" in query, query
                    self.result = AuthorizationCodeResult(
                        code=query["code"], state=query.get("state"), iss=query.get("iss")
                    )
                    return
        raise AssertionError("the provider never redirected back")

    async def callback(self) -> AuthorizationCodeResult:
        assert self.result is not None
        return self.result


@dataclass
class Team:
    url: str
    issuer: str
    redirect_uri: str
    home: Path
    page_redirect_uri: str = ""
    process: subprocess.Popen[str] | None = None

    def rows(self) -> list[Any]:
        journal = Journal.open(self.home / "journal.sqlite3")
        try:
            return journal.entries(limit=100)[0]
        finally:
            journal.close()

    def client(self, user: str, **kw: Any) -> tuple[httpx2.AsyncClient, Client, Browser, Memory]:
        browser = Browser(user, self.redirect_uri)
        storage = Memory(
            OAuthClientInformationFull(
                client_id=CLIENT_ID,
                redirect_uris=[self.redirect_uri],  # type: ignore[list-item]
                grant_types=["authorization_code"],
                response_types=["code"],
                token_endpoint_auth_method="none",
                issuer=self.issuer,
            )
        )
        auth = OAuthClientProvider(
            server_url=self.url,
            client_metadata=OAuthClientMetadata(
                redirect_uris=[self.redirect_uri],  # type: ignore[list-item]
                grant_types=["authorization_code"],
                response_types=["code"],
                token_endpoint_auth_method="none",
                client_name="gpu-tools tests",
            ),
            storage=storage,
            redirect_handler=browser.redirect,
            callback_handler=browser.callback,
        )
        http = httpx2.AsyncClient(auth=auth, timeout=60)
        return http, Client(streamable_http_client(self.url, http_client=http), **kw), browser, storage


@contextmanager
def team_server(sandbox: SandboxServer, tmp_path: Path, **policy: str) -> Iterator[Team]:
    """`gpu-mcp --transport http` with `oauth_issuer` a real oidc-provider that knows two clients: the
    MCP client's (public, PKCE) and the approval page's (confidential, PKCE). `policy`: more settings."""
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.skip("node or tests/node's oidc-provider is missing: run npm ci --prefix tests/node")
    port, idp_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    issuer = f"http://127.0.0.1:{idp_port}"
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"  # never served: the browser stops there
    page_redirect_uri = f"http://localhost:{port}/approvals/signin/callback"
    idp = subprocess.Popen(
        [node, str(NODE_DIR / "idp.mjs"), str(idp_port), url, CLIENT_ID, redirect_uri]
        + [PAGE_CLIENT_ID, page_redirect_uri, PAGE_SECRET],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert idp.stdout is not None
        assert ready_line(idp).strip() == f"ready {issuer}"
        home = tmp_path / "server"
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            "GPU_TOOLS_HOME": str(home),
            "NEBIUS_API_KEY": "sandbox-key",
            "NEBIUS_BASE_URL": f"{sandbox.url}/nebius",
            "NEBIUS_GPU_USD_PER_HOUR": json.dumps({"gpu-h100-sxm": 6.0}),
            "GPU_TOOLS_OAUTH_ISSUER": issuer,
            "GPU_TOOLS_APPROVAL_OIDC_CLIENT_ID": PAGE_CLIENT_ID,
            "GPU_TOOLS_APPROVAL_OIDC_CLIENT_SECRET": PAGE_SECRET,
            **{f"GPU_TOOLS_{k.upper()}": v for k, v in policy.items()},
        }
        args = [sys.executable, "-m", "mcp_server", "--transport", "http", "--port", str(port)]
        with running(args, env, url) as proc:
            yield Team(url, issuer, redirect_uri, home, page_redirect_uri, proc)
    finally:
        idp.terminate()
        idp.wait(timeout=10)


@pytest.fixture
def team(sandbox: SandboxServer, tmp_path: Path) -> Iterator[Team]:
    with team_server(sandbox, tmp_path) as found:
        yield found


async def test_a_reader_signs_in_sees_no_mutating_tool_and_cannot_create(
    team: Team, sandbox: SandboxServer
) -> None:
    http, client, browser, storage = team.client("reader")
    async with http, client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert "list_offers" in names and not names & MUTATING
        refused = await client.call_tool(CREATE, ARGS)
        assert "gpu.write" in error_text(refused)
    # The SDK ran the flow itself: one authorization request, with PKCE and the resource indicator.
    (authorize,) = browser.seen
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["resource"] == [team.url]
    assert storage.tokens is not None and storage.tokens.scope is not None
    assert set(storage.tokens.scope.split()) == {"gpu.read"}
    assert mutating_requests(sandbox) == []
    (row,) = team.rows()
    assert (row.outcome, row.actor, row.operation) == ("refused", "reader@example.com", CREATE)


async def test_a_writer_signs_in_and_creates_journaled_under_their_email(
    team: Team, sandbox: SandboxServer
) -> None:
    http, client, _, storage = team.client("writer", elicitation_callback=Human(), mode="legacy")
    async with http, client:
        assert CREATE in {tool.name for tool in (await client.list_tools()).tools}
        assert structured(await client.call_tool(CREATE, ARGS))["outcome"] == "done"
    assert storage.tokens is not None and set((storage.tokens.scope or "").split()) == {
        "gpu.read",
        "gpu.write",
    }
    assert len(mutating_requests(sandbox)) == 1
    (row,) = team.rows()
    assert (row.outcome, row.actor, row.confirmed_by) == ("ok", "writer@example.com", "writer@example.com")
