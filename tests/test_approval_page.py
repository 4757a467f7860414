"""The approval page in real Chromium, through the real MCP fronts, counting what reached the sandbox:
a client that cannot show a form (or a policy that wants the page) gets a link; the person signs in
with the one-time code, sees the whole plan and approves or denies; the same call then sends once."""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters, types
from mcp.client.stdio import stdio_client

from gpu_tools.sandbox import SandboxServer
from gpu_tools.toolkit import Toolkit
from mcp_server import build_server
from tests.browser import chromium, decide, link_and_code, screenshot, sign_in, submit
from tests.clock import FakeClock
from tests.conftest import HoldsAnswers, mutating_requests, sandbox_settings
from tests.mcp_helpers import Human, error_text, structured

pytestmark = pytest.mark.anyio

MODES = ["modern", "legacy"]
CREATE = {
    "name": "page-demo",
    "model_name": "openai/gpt-oss-20b",
    "flavor_name": "base",
    "gpu_type": "gpu-h100-sxm",
    "gpu_count": 1,
    "min_replicas": 1,
    "max_replicas": 2,
    "expires_in": "2h",
}


def page_settings(sandbox: SandboxServer, **overrides: Any) -> Any:
    return sandbox_settings(
        sandbox,
        approval_wait="0s",
        approval_open_browser=False,
        budget_usd_per_day=500.0,
        nebius_gpu_usd_per_hour={"gpu-h100-sxm": 6.0},
        **overrides,
    )


def page_server(
    sandbox: SandboxServer, *, transport: httpx.AsyncBaseTransport | None = None, **overrides: Any
) -> Any:
    """An in-process server whose approval page announces into a list (the person's terminal)."""
    server = build_server(toolkit=Toolkit(page_settings(sandbox, **overrides), transport=transport))
    lines: list[str] = []
    server.toolkit.approvals.say = lines.append
    server.lines = lines
    return server


def client(server: Any, mode: str, **kw: Any) -> Client:
    return Client(server, mode=mode, **kw) if mode == "legacy" else Client(server, **kw)


def rows(server: Any) -> list[Any]:
    return server.toolkit.journal.entries()[0]


@pytest.mark.parametrize("mode", MODES)
async def test_a_client_without_elicitation_creates_through_the_page(
    sandbox: SandboxServer, mode: str
) -> None:
    server = page_server(sandbox)
    async with client(server, mode) as c, chromium() as browser:
        pending = structured(await c.call_tool("nebius_create_endpoint", CREATE))
        assert pending["outcome"] == "approval_pending"
        link = pending["approval"]
        assert link["via"] == "page" and link["url"].startswith("http://localhost:")
        assert link["url"] in link["next_step"] and "same arguments" in link["next_step"]
        again = structured(await c.call_tool("nebius_create_endpoint", CREATE))
        assert again["approval"]["id"] == link["id"]  # one pending approval per plan and requester
        assert mutating_requests(sandbox) == []

        url, code = link_and_code(server.lines, link["id"])
        assert url == link["url"]
        page = await browser.new_page()
        before = await page.goto(url)
        assert before is not None and "Sign in" in await page.content()  # the link alone approves nothing
        await sign_in(page, url, code)
        text = await page.inner_text("main")
        for shown in ("nebius", "nebius_create_endpoint", "page-demo", "$", "Daily budget", "expires"):
            assert shown in text, shown
        assert "Waiting for your decision" in text
        answer = await decide(page, "approve")
        assert answer.status == 303
        assert "Approved by local user (page)" in await page.inner_text("#status")

        done = structured(await c.call_tool("nebius_create_endpoint", CREATE))
        assert done["outcome"] == "done"
        # Calling again after the send is a new question, never the used approval's replay.
        again = structured(await c.call_tool("nebius_create_endpoint", CREATE))
        assert again["outcome"] == "approval_pending" and again["approval"]["id"] != link["id"]
    creates = [r for r in mutating_requests(sandbox) if r["method"] == "POST"]
    assert len(creates) == 1
    sent = [r for r in rows(server) if r.outcome == "ok"]
    assert len(sent) == 1 and sent[0].confirmed_by == "local user (page)"
    server.toolkit.close()


async def test_screenshots_light_dark_and_phone(sandbox: SandboxServer) -> None:
    server = page_server(sandbox)
    async with client(server, "modern") as c, chromium() as browser:
        link = structured(await c.call_tool("nebius_create_endpoint", CREATE))["approval"]
        url, code = link_and_code(server.lines, link["id"])
        shots = []
        for name, options in (
            ("approval-light.png", {"color_scheme": "light", "viewport": {"width": 1000, "height": 900}}),
            ("approval-dark.png", {"color_scheme": "dark", "viewport": {"width": 1000, "height": 900}}),
            ("approval-phone.png", {"color_scheme": "light", "viewport": {"width": 390, "height": 844}}),
        ):
            context = await browser.new_context(**options)
            page = await context.new_page()
            if not shots:
                await page.goto(url)
                await screenshot(page, "approval-signin.png")
                await sign_in(page, url, code)
                state = await context.storage_state()
            else:
                await context.add_cookies(state["cookies"])
                await page.goto(url)
            shots.append(await screenshot(page, name))
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= options["viewport"]["width"]  # nothing runs off the side of a phone
            await context.close()
    if os.environ.get("DOCS_SCREENSHOT"):  # refresh the README's picture (a run that sets it, on purpose)
        docs = Path(__file__).resolve().parent.parent / "docs"
        docs.mkdir(exist_ok=True)
        (docs / "approval-page.png").write_bytes(shots[0].read_bytes())
    server.toolkit.close()


@pytest.mark.parametrize("mode", MODES)
async def test_an_auto_accepting_form_client_under_page_sends_nothing(
    sandbox: SandboxServer, mode: str
) -> None:
    human = Human("accept", True)
    server = page_server(sandbox, approval="page")
    async with client(server, mode, elicitation_callback=human) as c:
        pending = structured(await c.call_tool("nebius_create_endpoint", CREATE))
    # Never a form: at most the link (a legacy client that declares URL mode is sent it to open).
    assert pending["outcome"] == "approval_pending"
    assert all(m.startswith("Approve on the gpu-tools approval page") for m in human.messages)
    assert mutating_requests(sandbox) == []
    server.toolkit.close()


async def test_a_form_yes_with_its_approval_is_not_enough_under_page(sandbox: SandboxServer) -> None:
    """The core refuses whatever a front does: a yes without a page decision sends nothing."""
    server = page_server(sandbox, approval="page")
    tk = server.toolkit
    question = await tk.question("nebius_create_endpoint", CREATE)
    assert question is not None and question.on_the_page
    from gpu_tools.errors import ConfirmationRefused
    from gpu_tools.gate import Approve

    with pytest.raises(ConfirmationRefused, match="has not been approved on the approval page"):
        await tk.call("nebius_create_endpoint", CREATE, confirmer=Approve(), approval_id=question.approval.id)
    with pytest.raises(ConfirmationRefused, match="approval=page"):
        await tk.call("nebius_create_endpoint", CREATE, confirmer=Approve())
    assert mutating_requests(sandbox) == [] and [r.outcome for r in rows(server)] == ["refused", "refused"]
    tk.close()


async def test_deny_refuses_the_call_and_journals_it(sandbox: SandboxServer) -> None:
    server = page_server(sandbox)
    async with client(server, "modern") as c, chromium() as browser:
        link = structured(await c.call_tool("nebius_create_endpoint", CREATE))["approval"]
        page = await browser.new_page()
        await sign_in(page, *link_and_code(server.lines, link["id"]))
        assert (await decide(page, "deny")).status == 303
        assert "Denied by local user" in await page.inner_text("#status")
        refused = await c.call_tool("nebius_create_endpoint", CREATE)
    assert "denied on the approval page by local user" in error_text(refused)
    assert mutating_requests(sandbox) == []
    assert [r.outcome for r in rows(server)] == ["refused"]
    assert server.toolkit.journal.decisions(link["id"])[0]["decision"] == "denied"
    server.toolkit.close()


async def test_an_expired_approval_cannot_be_decided_and_sends_nothing(sandbox: SandboxServer) -> None:
    """Approvals expire on the toolkit's clock (`Toolkit(now=...)`): the test moves it past
    `approval_ttl` instead of waiting or rewriting the record."""
    clock = FakeClock()
    server = build_server(toolkit=Toolkit(page_settings(sandbox), now=clock))
    server.lines = lines = []  # type: ignore[attr-defined]
    tk = server.toolkit  # type: ignore[attr-defined]
    tk.approvals.say = lines.append
    async with client(server, "modern") as c, chromium() as browser:
        link = structured(await c.call_tool("nebius_create_endpoint", CREATE))["approval"]
        page = await browser.new_page()
        await sign_in(page, *link_and_code(lines, link["id"]))
        clock.advance(9 * 60)  # approval_ttl is 10m: still open
        assert not tk.journal.approval(link["id"]).expired
        clock.advance(61)
        assert tk.journal.approval(link["id"]).expired
        answer = await decide(page, "approve")
        assert answer.status == 409 and "expired" in await page.inner_text("main")
        fresh = structured(await c.call_tool("nebius_create_endpoint", CREATE))
    assert fresh["outcome"] == "approval_pending" and fresh["approval"]["id"] != link["id"]
    assert mutating_requests(sandbox) == []
    tk.close()


def test_codes_and_sessions_of_the_page_expire_on_the_toolkits_clock(sandbox: SandboxServer) -> None:
    clock = FakeClock()
    tk = Toolkit(page_settings(sandbox), now=clock)
    signin = tk.approvals.signin
    late, fresh = signin.issue(ttl=timedelta(minutes=10)), signin.issue(ttl=timedelta(minutes=30))
    clock.advance(11 * 60)
    assert signin.redeem(late) is None  # past its ten minutes on the toolkit's clock
    assert signin.redeem(fresh) == "local user"
    session = signin.open("local user")
    assert signin.session(session) is not None
    clock.advance(8 * 3600 + 1)  # SESSION_TTL
    assert signin.session(session) is None
    tk.close()


async def test_csrf_cross_site_foreign_host_and_a_second_decision(sandbox: SandboxServer) -> None:
    server = page_server(sandbox)
    async with client(server, "modern") as c, chromium() as browser:
        link = structured(await c.call_tool("nebius_create_endpoint", CREATE))["approval"]
        url, code = link_and_code(server.lines, link["id"])
        context = await browser.new_context()
        page = await context.new_page()
        await sign_in(page, url, code)
        origin = url.split("/approvals/")[0]
        decide_url = f"{url}/decide"
        shown = await page.goto(url)
        assert shown is not None
        headers = shown.headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "unsafe-inline" not in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"] == "no-referrer"
        assert headers["cache-control"] == "no-store"
        cookie = next(c for c in await context.cookies() if c["name"] == "gpu_approvals")
        assert cookie["sameSite"] == "Strict" and cookie["httpOnly"]

        # The session's cookie, from the page's own origin, but no or a wrong synchronizer token.
        same = {"Origin": origin}
        missing = await page.request.post(decide_url, form={"decision": "approve"}, headers=same)
        wrong = await page.request.post(
            decide_url, form={"decision": "approve", "csrf": "not-the-token"}, headers=same
        )
        assert missing.status == wrong.status == 403
        # A POST from another site: a form on a page of another origin, submitted by the browser.
        other = await context.new_page()
        await other.set_content(
            f'<form method="post" action="{decide_url}"><input name="decision" value="approve">'
            '<input name="csrf" value="x"></form>'
        )
        async with other.expect_response(decide_url) as cross:
            await other.evaluate("document.forms[0].submit()")
        assert (await cross.value).status == 403
        # A foreign Host (DNS rebinding): refused before anything is read.
        port = url.split(":")[2].split("/")[0]
        foreign = httpx.get(url, headers={"Host": f"evil.example:{port}"})
        assert foreign.status_code == 421
        assert server.toolkit.journal.approval(link["id"]).status is None  # nothing decided yet

        token = await page.input_value("input[name=csrf]")
        assert (await decide(page, "approve")).status == 303
        assert await page.query_selector("input[name=csrf]") is None  # decided: no buttons any more
        # The same session's valid token, a second decision: the approval is decided once.
        second = await page.request.post(decide_url, form={"decision": "deny", "csrf": token}, headers=same)
        assert second.status == 409
    assert server.toolkit.journal.approval(link["id"]).status == "approved"
    assert mutating_requests(sandbox) == []
    server.toolkit.close()


async def test_the_index_lists_pending_approvals(sandbox: SandboxServer) -> None:
    server = page_server(sandbox)
    async with client(server, "modern") as c, chromium() as browser:
        one = structured(await c.call_tool("nebius_create_endpoint", CREATE))["approval"]
        two = structured(await c.call_tool("nebius_create_endpoint", {**CREATE, "name": "second"}))[
            "approval"
        ]
        page = await browser.new_page()
        url, code = link_and_code(server.lines, one["id"])
        await page.goto(url.rsplit("/", 1)[0] + "/")
        assert "Sign in" in await page.content()
        await page.fill("input[name=code]", code)
        await submit(page)
        listed = await page.inner_text("main")
        assert "Pending approvals" in listed and "page-demo" in listed and "second" in listed
        # Signed in, an approver also sees what runs, what it costs and the budgets (read-only).
        assert "running now: $0.00 per hour" in listed.lower() and "Daily budget $500.00" in listed
        hrefs = await page.eval_on_selector_all("ul.pending a", "els => els.map(e => e.getAttribute('href'))")
        assert sorted(hrefs) == sorted([f"/approvals/{one['id']}", f"/approvals/{two['id']}"])
    server.toolkit.close()


async def test_a_legacy_url_mode_client_opens_the_link_and_the_call_sends(sandbox: SandboxServer) -> None:
    server = page_server(sandbox, approval="page")
    seen: list[types.ElicitRequestURLParams] = []
    async with chromium() as browser:
        page = await browser.new_page()

        async def opens_the_link(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
            assert isinstance(params, types.ElicitRequestURLParams)
            seen.append(params)
            await sign_in(page, *link_and_code(server.lines, params.elicitation_id))
            await decide(page, "approve")
            return types.ElicitResult(action="accept")

        async with Client(server, mode="legacy", elicitation_callback=opens_the_link) as c:
            done = structured(await c.call_tool("nebius_create_endpoint", CREATE))
    assert done["outcome"] == "done" and len(seen) == 1 and seen[0].url.startswith("http://localhost:")
    assert len([r for r in mutating_requests(sandbox) if r["method"] == "POST"]) == 1
    server.toolkit.close()


async def test_a_stdio_server_without_elicitation_creates_through_the_page(gpu_home: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "GPU_TOOLS_HOME": str(gpu_home),
        "HOME": str(gpu_home),
        "GPU_TOOLS_APPROVAL_WAIT": "0s",
        "GPU_TOOLS_APPROVAL_OPEN_BROWSER": "false",
    }
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcp_server", "--sandbox", "--sandbox-ready-after", "0.2"],
        env=env,
    )
    with tempfile.TemporaryFile("w+") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as c, chromium() as browser:
            pending = structured(await c.call_tool("nebius_create_endpoint", CREATE))
            assert pending["outcome"] == "approval_pending"
            errlog.seek(0)
            url, code = link_and_code(errlog.read().splitlines(), pending["approval"]["id"])
            page = await browser.new_page()
            await sign_in(page, url, code)
            assert (await decide(page, "approve")).status == 303
            done = structured(await c.call_tool("nebius_create_endpoint", CREATE))
            again = structured(await c.call_tool("nebius_create_endpoint", CREATE))
            log = structured(await c.call_tool("history", {}))
    assert done["outcome"] == "done" and again["outcome"] == "approval_pending"
    assert again["approval"]["id"] != pending["approval"]["id"]  # a new question, not the used approval
    assert [e["outcome"] for e in log["items"]] == ["ok"]
    assert log["items"][0]["confirmed_by"] == "local user (page)"


async def test_a_2026_url_mode_client_is_sent_the_page_as_an_input_request(sandbox: SandboxServer) -> None:
    server = page_server(sandbox, approval="page")
    seen: list[types.ElicitRequestURLParams] = []
    async with chromium() as browser:
        page = await browser.new_page()

        async def opens_the_link(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
            assert isinstance(params, types.ElicitRequestURLParams)
            seen.append(params)
            await sign_in(page, *link_and_code(server.lines, params.elicitation_id))
            await decide(page, "approve")
            return types.ElicitResult(action="accept")

        async with Client(server, elicitation_callback=opens_the_link) as c:
            done = structured(await c.call_tool("nebius_create_endpoint", CREATE))
    assert done["outcome"] == "done" and len(seen) == 1 and seen[0].url.startswith("http://localhost:")
    assert len([r for r in mutating_requests(sandbox) if r["method"] == "POST"]) == 1
    sent = [r for r in rows(server) if r.outcome == "ok"]
    assert [r.confirmed_by for r in sent] == ["local user (page)"]
    server.toolkit.close()


async def test_wrong_codes_pause_sign_in_by_code(sandbox: SandboxServer) -> None:
    """Ten wrong codes in a row, and even the right code is refused for a while: no guessing."""
    server = page_server(sandbox)
    async with client(server, "modern") as c, chromium() as browser:
        link = structured(await c.call_tool("nebius_create_endpoint", CREATE))["approval"]
        url, code = link_and_code(server.lines, link["id"])
        page = await browser.new_page()
        for _ in range(10):
            await page.goto(url)
            await page.fill("input[name=code]", "AAAA-AAAA")
            assert (await submit(page)).status == 403
        await page.goto(url)
        await page.fill("input[name=code]", code)
        assert (await submit(page)).status == 403 and "paused" in await page.inner_text("main")
        assert await page.query_selector("#status") is None
    assert server.toolkit.journal.approval(link["id"]).status is None
    server.toolkit.close()


@pytest.mark.parametrize("mode", MODES)
async def test_calls_racing_for_one_page_approval_send_once_and_are_told_the_send_is_running(
    sandbox: SandboxServer, mode: str
) -> None:
    held = HoldsAnswers()  # the send stays in progress until the 7 other calls answered
    server = page_server(sandbox, transport=held)
    async with client(server, mode) as c:
        link = structured(await c.call_tool("nebius_create_endpoint", CREATE))["approval"]
        server.toolkit.approvals.decide(link["id"], "approved", by="carol", how="page")
        held.hold_next("POST")
        answers: list[Any] = []

        async def one() -> None:
            answers.append(await c.call_tool("nebius_create_endpoint", CREATE))
            if len(answers) == 7:
                held.release()

        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(one)
        history = structured(await c.call_tool("history", {}))
    done = [a for a in answers if not a.is_error and structured(a)["outcome"] == "done"]
    busy = [error_text(a) for a in answers if a.is_error]
    assert len(done) == 1 and len([r for r in mutating_requests(sandbox) if r["method"] == "POST"]) == 1
    for text in busy:  # still running: never "unknown", never the check-the-provider hint
        assert "is being used right now by a send in progress" in text and "unknown" not in text, text
    # Every other call came while the send was in progress (a call after it is a new question: above).
    assert len(busy) == 7 and [e["outcome"] for e in history["items"]] == ["ok"]
    assert held.held == 1


async def test_a_denied_approval_whose_call_came_back_says_who_denied_it_on_the_page(
    sandbox: SandboxServer,
) -> None:
    """Denied on the page, then the call comes back and is refused (closing the approval): the page
    still says who denied it, and that nothing was sent (real Chromium; screenshot to look at)."""
    server = page_server(sandbox)
    async with client(server, "auto") as c, chromium() as browser:
        link = structured(await c.call_tool("nebius_create_endpoint", CREATE))["approval"]
        url, code = link_and_code(server.lines, link["id"])
        page = await browser.new_page()
        await sign_in(page, url, code)
        assert (await decide(page, "deny")).status == 303
        refused = await c.call_tool("nebius_create_endpoint", CREATE)
        assert refused.is_error and "denied on the approval page by local user" in error_text(refused)
        await page.reload()
        status = await page.inner_text("#status")
        await screenshot(page, "approval-denied-closed.png")
    assert "Denied by local user" in status and "Nothing was sent" in status, status
    [row] = rows(server)
    assert row.outcome == "refused" and "denied on the approval page by local user" in (row.error or "")
    assert mutating_requests(sandbox) == []
    server.toolkit.close()
