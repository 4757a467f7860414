"""approval=passkey in real Chromium with its virtual authenticator (CDP WebAuthn): an enrolled
approver's passkey (with user verification) approves exactly one send; an auto-accepting form
client, a signed-in browser without the enrolled passkey, and a POST without an assertion send
nothing; `%gpu` under passkey shows the link and waits for the decision."""

from __future__ import annotations

import re
import threading
from typing import Any

import anyio
import pytest
from mcp import Client

from gpu_tools.sandbox import SandboxServer
from gpu_tools.toolkit import Toolkit
from tests.browser import chromium, decide, link_and_code, screenshot, sign_in
from tests.conftest import mutating_requests, new_shell, sandbox_settings
from tests.mcp_helpers import Human, structured
from tests.test_approval_page import CREATE, page_server

pytestmark = pytest.mark.anyio

AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}


async def with_authenticator(browser: Any) -> Any:
    """A page in a new browser context that has its own (empty) platform authenticator."""
    context = await browser.new_context()
    page = await context.new_page()
    cdp = await context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable")
    made = await cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
    page.authenticator = (cdp, made["authenticatorId"])
    return page


async def enroll(tk: Any, page: Any, name: str) -> None:
    passkeys = tk.approvals.passkeys
    await page.goto(passkeys.enroll_link(passkeys.new_enrollment(name)))
    await page.click("#passkey-enroll")
    await page.locator("#status", has_text="Passkey enrolled").wait_for()


def creates(sandbox: SandboxServer) -> list[dict]:
    return [r for r in mutating_requests(sandbox) if r["method"] == "POST"]


async def test_the_enrolled_passkey_approves_once_and_an_unenrolled_one_cannot(
    sandbox: SandboxServer,
) -> None:
    server = page_server(sandbox, approval="passkey")
    tk = server.toolkit
    async with Client(server) as c, chromium() as browser:
        alice = await with_authenticator(browser)
        await enroll(tk, alice, "alice")
        assert [r["name"] for r in tk.journal.approvers()] == ["alice"]
        assert [e["event"] for e in tk.journal.approver_events()] == ["enrolled"]

        pending = structured(await c.call_tool("nebius_create_endpoint", CREATE))
        link = pending["approval"]
        assert pending["outcome"] == "approval_pending" and link["via"] == "passkey"
        url, code = link_and_code(server.lines, link["id"])

        # A browser signed in with the code but holding no enrolled passkey: nothing it can do approves.
        stranger = await with_authenticator(browser)
        await sign_in(stranger, url, code)
        await stranger.click("button[value=approve]")
        await stranger.locator("#status", has_text="No passkey").wait_for()
        token = await stranger.input_value("input[name=csrf]")
        bare = await stranger.request.post(
            url + "/decide",
            form={"decision": "approve", "csrf": token},
            headers={"Origin": url.split("/approvals/")[0]},
        )
        assert bare.status == 403  # a page approval without an assertion is not a passkey approval
        assert tk.journal.approval(link["id"]).status is None

        # The enrolled approver, signed in with a new code, approves with the passkey.
        code_again = tk.approvals.signin.issue()
        await sign_in(alice, url, code_again)
        await screenshot(alice, "approval-passkey.png")
        answer = await decide(alice, "approve")
        assert answer.status == 303
        assert "Approved by alice (passkey)" in await alice.inner_text("#status")

        done = structured(await c.call_tool("nebius_create_endpoint", CREATE))
        again = structured(await c.call_tool("nebius_create_endpoint", CREATE))
    assert done["outcome"] == "done" and again["outcome"] == "approval_pending"
    assert again["approval"]["id"] != link["id"]  # calling again is a new question, never a replay
    assert len(creates(sandbox)) == 1
    sent = [r for r in tk.journal.entries()[0] if r.outcome == "ok"]
    assert [r.confirmed_by for r in sent] == ["alice (passkey)"]
    tk.close()


@pytest.mark.parametrize("mode", ["modern", "legacy"])
async def test_an_auto_accepting_form_client_under_passkey_sends_nothing(
    sandbox: SandboxServer, mode: str
) -> None:
    human = Human("accept", True)
    server = page_server(sandbox, approval="passkey")
    kw: dict[str, Any] = {"mode": "legacy"} if mode == "legacy" else {}
    async with Client(server, elicitation_callback=human, **kw) as c:
        pending = structured(await c.call_tool("nebius_create_endpoint", CREATE))
        again = structured(await c.call_tool("nebius_create_endpoint", CREATE))
    assert pending["outcome"] == again["outcome"] == "approval_pending"
    assert pending["approval"]["via"] == "passkey"
    assert all(m.startswith("Approve on the gpu-tools approval page") for m in human.messages)
    assert creates(sandbox) == []
    server.toolkit.close()


async def test_a_second_approver_enrolls_only_with_an_existing_approvers_passkey(
    sandbox: SandboxServer,
) -> None:
    server = page_server(sandbox, approval="passkey")
    tk = server.toolkit
    async with chromium() as browser:
        alice = await with_authenticator(browser)
        await enroll(tk, alice, "alice")
        bob = await with_authenticator(browser)
        passkeys = tk.approvals.passkeys
        link = passkeys.enroll_link(passkeys.new_enrollment("bob"))
        refused = await bob.goto(link)
        assert refused is not None and refused.status == 403 and "existing approver" in await bob.content()
        # Alice brings her authenticator to Bob's browser (a security key, a phone nearby): she signs in
        # with her passkey there, takes it away, and Bob enrolls his own authenticator's passkey.
        cdp, alices = alice.authenticator
        credentials = (await cdp.send("WebAuthn.getCredentials", {"authenticatorId": alices}))["credentials"]
        bob_cdp, bobs = bob.authenticator
        await bob_cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": bobs})
        key = await bob_cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
        for credential in credentials:
            await bob_cdp.send(
                "WebAuthn.addCredential",
                {"authenticatorId": key["authenticatorId"], "credential": credential},
            )
        await bob.click("#passkey-signin")
        await bob.wait_for_selector("#passkey-enroll")
        await bob_cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": key["authenticatorId"]})
        await bob_cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
        await bob.click("#passkey-enroll")
        await bob.locator("#status", has_text="Passkey enrolled").wait_for()
    events = tk.journal.approver_events()
    assert [(e["event"], e["name"], e["actor"]) for e in events] == [
        ("enrolled", "alice", None),
        ("enrolled", "bob", "alice"),
    ]
    tk.close()


async def test_gpu_magic_create_under_passkey_waits_for_the_page(
    sandbox: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = sandbox_settings(
        sandbox,
        approval="passkey",
        approval_open_browser=False,
        nebius_gpu_usd_per_hour={"gpu-h100-sxm": 6.0},
    )
    shell = new_shell()
    shell._gpu_magics._replace_toolkit(Toolkit(settings))
    tk = shell._gpu_magics.toolkit
    outcome: dict[str, Any] = {}

    def run_cell() -> None:
        try:
            outcome["result"] = shell.run_line_magic(
                "gpu",
                "nebius-create-endpoint --name nb --model-name openai/gpt-oss-20b --flavor-name base "
                "--gpu-type gpu-h100-sxm --expires-in 1h --yes",
            )
        except Exception as exc:  # the test reads it below
            outcome["error"] = exc

    async with chromium() as browser:
        alice = await with_authenticator(browser)
        await enroll(tk, alice, "alice")
        cell = threading.Thread(target=run_cell)
        cell.start()
        shown = ""
        with anyio.fail_after(30):
            while not (
                found := re.search(r"open (\S+) and sign in with the one-time code (\S{4}-\S{4})", shown)
            ):
                shown += capsys.readouterr().out
                await anyio.sleep(0.05)
        assert mutating_requests(sandbox) == []  # --yes is not a passkey
        await sign_in(alice, found.group(1), found.group(2))
        assert (await decide(alice, "approve")).status == 303
        await anyio.to_thread.run_sync(cell.join, 30)
    out = shown + capsys.readouterr().out
    assert "error" not in outcome, outcome.get("error")
    assert "approved by alice" in out and len(creates(sandbox)) == 1
    shell.extension_manager.unload_extension("ipython_ext")
    tk.close()
