"""The approval page signs people in through the team's identity provider (issue 22): a real
`oidc-provider` (tests/node/idp.mjs) and `gpu-mcp --transport http` with `oauth_issuer` and the page's own
client, Debian's Chromium driven by Playwright through the provider's login form, and MCP clients that
signed in with the SDK's `OAuthClientProvider`. Only `gpu.approve` approves; the journal names both
people; every step of the flow that does not hold (state, code, nonce, browser) is refused.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
import pytest
from mcp import Client

from gpu_tools.approvals.oidc import ProviderSignIn, SignInRefused
from gpu_tools.errors import redact
from gpu_tools.sandbox import SandboxServer
from gpu_tools.settings import Settings
from mcp_server.oauth import OAuthVerifier
from tests.browser import SCREENS, chromium, decide, screenshot, submit
from tests.clock import FakeClock
from tests.conftest import mutating_requests, ready_line
from tests.mcp_helpers import structured
from tests.test_cli import free_port
from tests.test_oauth import ARGS, CREATE
from tests.test_oauth_signin import NODE_DIR, PAGE_CLIENT_ID, PAGE_SECRET, Team, team_server

pytestmark = pytest.mark.anyio


@pytest.fixture
def page_team(sandbox: SandboxServer, tmp_path: Path) -> Iterator[Team]:
    """Every change is approved on the page; the requester's own yes does not count."""
    with team_server(
        sandbox, tmp_path, approval="page", approval_wait="0s", approval_separate_requester="true"
    ) as found:
        yield found


@asynccontextmanager
async def requester(team: Team, user: str) -> AsyncIterator[Client]:
    """An MCP client signed in through the provider as `user`, without a form (it gets the page's link)."""
    http, client, _, _ = team.client(user)
    async with http, client:
        yield client


async def provider_sign_in(browser: Any, link: str, user: str, **context: Any) -> Any:
    """Open the approval link in a fresh browser, take the page's "Sign in with your identity provider",
    type `user` into the provider's login form, and land back on the approval."""
    page = await (await browser.new_context(**context)).new_page()
    await page.goto(link)
    assert await page.query_selector("#signin-required"), await page.content()
    await page.click("#provider-signin")
    await page.wait_for_selector("input[name=username]")
    await page.fill("input[name=username]", user)
    await page.click("button[type=submit]")
    await page.wait_for_url(link)
    return page


def creates(sandbox: SandboxServer) -> list[dict]:
    return [r for r in mutating_requests(sandbox) if r["method"] == "POST"]


async def test_an_operators_create_is_approved_by_an_approver_signed_in_through_the_provider(
    page_team: Team, sandbox: SandboxServer
) -> None:
    team = page_team
    async with requester(team, "writer") as writer, chromium() as browser:
        pending = structured(await writer.call_tool(CREATE, ARGS))
        assert pending["outcome"] == "approval_pending"
        link = pending["approval"]["url"]

        # A writer without gpu.approve signs in: the page says who they are and that they may not
        # approve; a POST anyway is refused (403), journaled, and sends nothing.
        theirs = await provider_sign_in(browser, link, "writer")
        assert "writer@example.com" in await theirs.inner_text("header")
        refusal = await theirs.inner_text("#not-allowed")
        assert "writer@example.com" in refusal and "gpu.approve" in refusal
        assert await theirs.is_disabled("button[value=approve]")
        # Enabled by hand, the form posts with the session's own CSRF token: the role still refuses it.
        await theirs.evaluate("document.querySelectorAll('button').forEach(b => { b.disabled = false; })")
        forced = await decide(theirs, "approve")
        assert forced.status == 403 and "gpu.approve" in await theirs.inner_text("main")
        assert creates(sandbox) == []

        # An approver signs in through the provider and approves: the same call again sends once.
        approver = await provider_sign_in(browser, link, "approver")
        assert "approver@example.com" in await approver.inner_text("header")
        assert (await decide(approver, "approve")).status == 303
        assert "Approved by approver@example.com" in await approver.inner_text("#status")
        done = structured(await writer.call_tool(CREATE, ARGS))
        assert done["outcome"] == "done"
        again = structured(await writer.call_tool(CREATE, ARGS))  # the approval is used: no second send
        assert again["outcome"] != "done" or again.get("replayed")
    assert len(creates(sandbox)) == 1
    rows = team.rows()
    sent = [r for r in rows if r.outcome == "ok"]
    assert [(r.actor, r.confirmed_by) for r in sent] == [
        ("writer@example.com", "approver@example.com (page)")
    ]
    refused = [r for r in rows if r.outcome == "refused"]
    assert [r.actor for r in refused] == ["writer@example.com"]
    assert "gpu.approve" in (refused[0].error or "") and pending["approval"]["id"] in (refused[0].error or "")


async def test_self_approval_is_refused_with_separation_even_with_gpu_approve(
    page_team: Team, sandbox: SandboxServer
) -> None:
    team = page_team
    async with requester(team, "lead") as lead, chromium() as browser:
        link = structured(await lead.call_tool(CREATE, ARGS))["approval"]["url"]
        own = await provider_sign_in(browser, link, "lead")
        assert await own.query_selector("#not-allowed") is None  # lead holds gpu.approve...
        refused = await decide(own, "approve")
        assert refused.status == 403 and "another approver" in await own.inner_text("main")  # ...not for self
        assert structured(await lead.call_tool(CREATE, ARGS))["outcome"] == "approval_pending"
        assert creates(sandbox) == []
        other = await provider_sign_in(browser, link, "approver")
        assert (await decide(other, "approve")).status == 303
        assert structured(await lead.call_tool(CREATE, ARGS))["outcome"] == "done"
    assert len(creates(sandbox)) == 1
    (sent,) = [r for r in team.rows() if r.outcome == "ok"]
    assert (sent.actor, sent.confirmed_by) == ("lead@example.com", "approver@example.com (page)")


async def test_screens_sign_in_required_and_not_allowed_on_a_phone_in_dark_mode(page_team: Team) -> None:
    phone = {"viewport": {"width": 390, "height": 844}, "color_scheme": "dark", "is_mobile": True}
    async with requester(page_team, "writer") as writer, chromium() as browser:
        link = structured(await writer.call_tool(CREATE, ARGS))["approval"]["url"]
        page = await (await browser.new_context(**phone)).new_page()
        await page.goto(link)
        assert "Sign in with your identity provider" in await page.inner_text("main")
        # The page fits the phone: nothing wider than its viewport.
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        required = await screenshot(page, "signin-required-phone-dark.png")
        theirs = await provider_sign_in(browser, link, "writer", **phone)
        assert await theirs.evaluate("document.documentElement.scrollWidth") <= 390
        not_allowed = await screenshot(theirs, "signin-not-allowed-phone-dark.png")
        # What a phone shows first (the full page is above).
        await theirs.screenshot(path=str(SCREENS / "signin-not-allowed-phone-dark-top.png"))
    assert required.stat().st_size > 0 and not_allowed.stat().st_size > 0 and required.parent == SCREENS


async def test_gpu_admin_enrolls_approvers_and_others_cannot(page_team: Team) -> None:
    """With the provider, managing approvers is gpu.admin's: an enrollment link made by
    `gpu-mcp approvers add` opens only for an administrator signed in through the provider (who is
    journaled as vouching), and the index lists the approvers for administrators only."""
    team = page_team
    # The command prints the link under approval_origin; the token is what the page checks.
    env = {**os.environ, "GPU_TOOLS_HOME": str(team.home), "HOME": str(team.home)}
    env["GPU_TOOLS_APPROVAL_ORIGIN"] = "https://gpu.example.com"
    added = subprocess.run(
        [sys.executable, "-m", "mcp_server", "approvers", "add", "dana", "--no-browser"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    token = added.stdout.split("/approvals/enroll/")[1].split()[0]
    base = team.url.removesuffix("/mcp").replace("127.0.0.1", "localhost")
    enroll = f"{base}/approvals/enroll/{token}"
    index = f"{base}/approvals/"
    async with chromium() as browser:
        approver = await provider_sign_in(browser, index, "approver")
        assert await approver.query_selector("#approvers") is None
        refused = await approver.goto(enroll)
        assert refused is not None and refused.status == 403
        assert "gpu.admin" in await approver.inner_text("main")

        admin = await provider_sign_in(browser, index, "admin")
        assert await admin.query_selector("#approvers")
        opened = await admin.goto(enroll)
        assert opened is not None and opened.status == 200
        assert await admin.query_selector("#passkey-enroll")


# ---- the flow's own checks, against the real provider, in process ------------------------------------------
@pytest.fixture
def provider() -> Iterator[tuple[str, str]]:
    """A real oidc-provider that knows the page's client; yields (issuer, the page's redirect URI)."""
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.skip("node or tests/node's oidc-provider is missing: run npm ci --prefix tests/node")
    port, idp_port = free_port(), free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    redirect = f"http://localhost:{port}/approvals/signin/callback"  # never served: we stop there
    idp = subprocess.Popen(
        [node, str(NODE_DIR / "idp.mjs"), str(idp_port), resource, "unused", "http://127.0.0.1:1/cb"]
        + [PAGE_CLIENT_ID, redirect, PAGE_SECRET],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert idp.stdout is not None
        assert ready_line(idp).startswith("ready ")
        yield f"http://127.0.0.1:{idp_port}", redirect
    finally:
        idp.terminate()
        idp.wait(timeout=10)


def flow(issuer: str, redirect: str) -> ProviderSignIn:
    resource = redirect.replace("localhost", "127.0.0.1").split("/approvals/")[0] + "/mcp"
    settings = Settings(oauth_issuer=issuer)
    return ProviderSignIn(
        OAuthVerifier(settings, resource),
        client_id=PAGE_CLIENT_ID,
        client_secret=PAGE_SECRET,
        scopes="openid email gpu.read gpu.approve gpu.admin",
        resource=resource,
        clock=FakeClock(),
    )


async def authorize(url: str, user: str, redirect: str) -> dict[str, str]:
    """Follow the provider's pages as `user` (its login_hint hook) up to the redirect back to the page."""
    url = f"{url}&{urlencode({'login_hint': user})}"
    async with httpx.AsyncClient(follow_redirects=False, timeout=30) as browser:
        for _ in range(12):
            response = await browser.get(url)
            assert response.status_code in (302, 303), (response.status_code, response.text[:300])
            url = urljoin(url, response.headers["location"])
            if url.startswith(redirect):
                return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    raise AssertionError("the provider never redirected back")


async def test_the_flow_signs_in_with_pkce_and_refuses_a_bad_state_a_replay_another_browser_a_wrong_nonce(
    provider: tuple[str, str],
) -> None:
    issuer, redirect = provider
    signin = flow(issuer, redirect)

    url = await signin.begin(redirect, "/approvals/abc", "browser-1")
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["response_type"] == ["code"]
    back = await authorize(url, "approver", redirect)
    assert back.get("iss") == issuer
    identity, next_url = await signin.finish(
        state=back["state"],
        code=back["code"],
        iss=back.get("iss"),
        binding="browser-1",
        redirect_uri=redirect,
    )
    assert identity.user == "approver@example.com" and "gpu.approve" in identity.scopes
    assert "gpu.write" not in identity.scopes and next_url == "/approvals/abc"

    # The same callback again: its state was used.
    with pytest.raises(SignInRefused, match="unknown, used or expired"):
        await signin.finish(
            state=back["state"], code=back["code"], iss=issuer, binding="browser-1", redirect_uri=redirect
        )
    # A state this process never made.
    with pytest.raises(SignInRefused, match="unknown, used or expired"):
        await signin.finish(
            state="made-up", code=back["code"], iss=issuer, binding="browser-1", redirect_uri=redirect
        )
    # The used code under a fresh state of this browser: the provider refuses it (and PKCE would too).
    fresh = parse_qs(urlsplit(await signin.begin(redirect, "/approvals/", "browser-1")).query)["state"][0]
    with pytest.raises(SignInRefused, match="refused the code"):
        await signin.finish(
            state=fresh, code=back["code"], iss=issuer, binding="browser-1", redirect_uri=redirect
        )

    # A callback carried to another browser (login CSRF): refused before the code is spent.
    url = await signin.begin(redirect, "/approvals/", "browser-1")
    back = await authorize(url, "approver", redirect)
    with pytest.raises(SignInRefused, match="another browser"):
        await signin.finish(
            state=back["state"], code=back["code"], iss=issuer, binding="browser-2", redirect_uri=redirect
        )

    # An answer naming another issuer (RFC 9207 mix-up).
    url = await signin.begin(redirect, "/approvals/", "browser-1")
    back = await authorize(url, "approver", redirect)
    with pytest.raises(SignInRefused, match="another issuer"):
        await signin.finish(
            state=back["state"],
            code=back["code"],
            iss="https://evil.example",
            binding="browser-1",
            redirect_uri=redirect,
        )

    # The ID token's nonce is not the one this sign-in sent: refused.
    url = await signin.begin(redirect, "/approvals/", "browser-1")
    back = await authorize(url, "approver", redirect)
    kept = signin._flows[back["state"]]
    signin._flows[back["state"]] = dataclasses.replace(kept, nonce="another-nonce")
    with pytest.raises(SignInRefused, match="nonce"):
        await signin.finish(
            state=back["state"], code=back["code"], iss=issuer, binding="browser-1", redirect_uri=redirect
        )


async def test_a_sign_in_expires_on_the_toolkits_clock(provider: tuple[str, str]) -> None:
    issuer, redirect = provider
    signin = flow(issuer, redirect)
    url = await signin.begin(redirect, "/approvals/", "browser-1")
    back = await authorize(url, "approver", redirect)
    signin.clock.advance(11 * 60)  # type: ignore[attr-defined]
    with pytest.raises(SignInRefused, match="expired"):
        await signin.finish(
            state=back["state"], code=back["code"], iss=issuer, binding="browser-1", redirect_uri=redirect
        )


async def test_the_callback_of_the_server_refuses_a_bad_state_and_a_provider_error(page_team: Team) -> None:
    base = page_team.page_redirect_uri
    async with httpx.AsyncClient(timeout=30) as browser:
        bad = await browser.get(base, params={"state": "made-up", "code": "x"})
        assert bad.status_code == 403 and "unknown, used or expired" in bad.text
        assert "gpu_approvals=" not in bad.headers.get("set-cookie", "")
        denied = await browser.get(base, params={"error": "access_denied", "state": "x"})
        assert denied.status_code == 403 and "access_denied" in denied.text
        # The start of a sign-in goes to the provider with PKCE and sets a Lax cookie binding the browser.
        start = await browser.get(base.replace("/callback", "/provider"), params={"next": "/approvals/"})
        assert start.status_code == 303 and start.headers["location"].startswith(page_team.issuer)
        cookie = start.headers["set-cookie"]
        assert "gpu_approvals_flow=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie


async def test_under_passkey_a_provider_approver_still_needs_the_passkey(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    with team_server(sandbox, tmp_path, approval="passkey", approval_wait="0s") as team:
        async with requester(team, "writer") as writer, chromium() as browser:
            link = structured(await writer.call_tool(CREATE, ARGS))["approval"]["url"]
            approver = await provider_sign_in(browser, link, "approver")
            assert await approver.query_selector("#not-allowed") is None  # the role is there...
            csrf = await approver.input_value("input[name=csrf]")
            origin = link.split("/approvals/")[0]
            answer = await approver.request.post(
                link + "/decide", form={"decision": "approve", "csrf": csrf}, headers={"Origin": origin}
            )
            assert answer.status == 403 and "passkey" in await answer.text()  # ...the passkey is not
            assert structured(await writer.call_tool(CREATE, ARGS))["outcome"] == "approval_pending"
    assert creates(sandbox) == []


async def test_a_static_token_without_gpu_approve_signs_in_beside_the_provider_and_may_not_approve(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    tokens = {"tok-viewer-0123456789": {"user": "viewer", "scopes": ["gpu.read", "gpu.write"]}}
    with team_server(
        sandbox, tmp_path, approval="page", approval_wait="0s", http_tokens=json.dumps(tokens)
    ) as team:
        async with requester(team, "writer") as writer, chromium() as browser:
            link = structured(await writer.call_tool(CREATE, ARGS))["approval"]["url"]
            page = await (await browser.new_context()).new_page()
            await page.goto(link)
            assert await page.query_selector(
                "#provider-signin"
            )  # the provider first, the token form beside it
            await page.fill("input[name=code]", "tok-viewer-0123456789")
            await submit(page, "form.signin button[type=submit]")
            assert page.url == link
            assert "viewer may not approve" in await page.inner_text("#not-allowed")
            await page.evaluate("document.querySelectorAll('button').forEach(b => { b.disabled = false; })")
            assert (await decide(page, "approve")).status == 403
    assert creates(sandbox) == []
    (refused,) = [r for r in team.rows() if r.outcome == "refused"]
    assert refused.actor == "viewer"


def test_the_page_client_secret_is_a_secret() -> None:
    secret = "page-client-secret-0123456789"
    Settings(oauth_issuer="https://idp.example.com", approval_oidc_client_secret=secret)
    assert secret not in redact(f"token endpoint said no for {secret}")


async def test_a_provider_that_cannot_be_reached_refuses_with_a_sentence() -> None:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    signin = ProviderSignIn(
        OAuthVerifier(Settings(oauth_issuer=down), f"{down}/mcp"),
        client_id=PAGE_CLIENT_ID,
        client_secret=None,
        scopes="openid",
        resource=None,
        clock=FakeClock(),
    )
    with pytest.raises(SignInRefused, match="metadata cannot be read"):
        await signin.begin("http://localhost:1/approvals/signin/callback", "/approvals/", "browser-1")
