"""Approvals as records: pending approvals and decisions posted to the webhook with their link; the
`gpu-mcp approvers` commands (enrollment by a one-time link the command serves itself, list, remove),
each journaled and posted; the policy in force said by list_providers and spend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from gpu_tools.journal import Journal
from gpu_tools.sandbox import SandboxServer
from gpu_tools.settings import Settings
from gpu_tools.toolkit import Toolkit
from mcp_server import build_server
from tests.browser import chromium
from tests.clock import FakeClock
from tests.conftest import mutating_requests
from tests.mcp_helpers import structured
from tests.test_approval_page import CREATE, page_server, page_settings
from tests.test_approval_passkeys import with_authenticator

pytestmark = pytest.mark.anyio


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback receiver of webhook notices: (its URL, what it received)."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers.get("content-length", 0)))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


async def arrived(received: list[dict[str, Any]], count: int) -> None:
    with anyio.fail_after(10):
        while len(received) < count:
            await anyio.sleep(0.02)


async def test_a_pending_approval_and_its_decision_reach_the_webhook(
    sandbox: SandboxServer, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook
    server = page_server(sandbox, guard_webhook_url=url)
    async with Client(server) as c:
        link = structured(await c.call_tool("nebius_create_endpoint", CREATE))["approval"]
        await arrived(received, 1)
        server.toolkit.approvals.decide(link["id"], "denied", by="carol", how="page")
        await arrived(received, 2)
    assert [n["event"] for n in received] == ["approval_pending", "approval_denied"]
    assert received[0]["url"] == link["url"] and "page-demo" in received[0]["message"]
    assert received[1]["by"] == "carol"
    server.toolkit.close()


async def test_list_providers_and_spend_say_the_policy_in_force(sandbox: SandboxServer) -> None:
    server = page_server(sandbox, approval="passkey", approval_above_usd_per_hour=1.0, approval_quorum=2)
    async with Client(server) as c:
        providers = structured(await c.call_tool("list_providers", {}))
        spend = structured(await c.call_tool("spend", {}))
    for notes in (providers["notes"], spend["notes"]):
        [said] = [n for n in notes if n.startswith("Approval policy: ")]
        assert said.startswith("Approval policy: passkey:") and "under $1/hour may use the form" in said
        assert "2 distinct approvers" in said
    server.toolkit.close()


def gpu_mcp(home: Path, *args: str, **kw: Any) -> Any:
    env = {**os.environ, "GPU_TOOLS_HOME": str(home), "HOME": str(home), **kw.pop("env", {})}
    return subprocess.Popen(
        [sys.executable, "-m", "mcp_server", "approvers", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


async def test_approvers_add_list_remove(gpu_home: Path, webhook: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = webhook
    env = {"GPU_TOOLS_GUARD_WEBHOOK_URL": url}
    empty = gpu_mcp(gpu_home, "list", env=env)
    assert "no approvers" in empty.communicate(timeout=30)[0]
    adding = gpu_mcp(gpu_home, "add", "carol", "--no-browser", env=env)
    assert adding.stdout is not None
    line = await anyio.to_thread.run_sync(adding.stdout.readline)
    assert "carol enrolls a passkey at http://localhost:" in line
    link = line.split(" at ", 1)[1].split(";")[0]
    async with chromium() as browser:
        page = await with_authenticator(browser)
        await page.goto(link)
        await page.click("#passkey-enroll")
        await page.locator("#status", has_text="Passkey enrolled").wait_for()
    out, _ = await anyio.to_thread.run_sync(lambda: adding.communicate(timeout=30))
    assert "enrolled carol" in out and adding.returncode == 0
    listed = gpu_mcp(gpu_home, "list", env=env).communicate(timeout=30)[0]
    assert listed.startswith("carol  enrolled ")
    removing = gpu_mcp(gpu_home, "remove", "carol", env=env)
    assert "removed carol (1 passkey(s))" in removing.communicate(timeout=30)[0]
    again = gpu_mcp(gpu_home, "remove", "carol", env=env)
    assert again.wait(timeout=30) == 2 and "no approver named 'carol'" in again.communicate()[1]
    journal = Journal.open(Settings().journal_target())
    events = [(e["event"], e["name"]) for e in journal.approver_events()]
    journal.close()
    assert events == [("enrolled", "carol"), ("removed", "carol")]
    await arrived(received, 2)
    assert [(n["event"], n["name"]) for n in received] == [
        ("approver_enrolled", "carol"),
        ("approver_removed", "carol"),
    ]


async def test_decisions_are_rows_decided_once_on_both_journals(
    sandbox: SandboxServer, journal_backend: str
) -> None:
    """The decision records on SQLite and PostgreSQL: a quorum of two distinct approvers, one answer
    each, a decided approval answers no more, and the journal's schema is version 6 on both."""
    from gpu_tools.approvals import Decided
    from gpu_tools.toolkit import Toolkit
    from tests.conftest import sandbox_settings

    tk = Toolkit(
        sandbox_settings(
            sandbox, approval="page", approval_quorum=2, nebius_gpu_usd_per_hour={"gpu-h100-sxm": 6.0}
        )
    )
    assert tk.journal.schema_version() >= 6  # 6 brought the decisions
    question = await tk.question("nebius_create_endpoint", CREATE, asked_by="alice")
    assert question is not None and question.mode == "page"
    again = await tk.question("nebius_create_endpoint", CREATE, asked_by="alice")
    assert again is not None and again.approval.id == question.approval.id  # one open approval per plan
    approval_id = question.approval.id
    assert tk.approvals.decide(approval_id, "approved", by="bob", how="page").status is None
    with pytest.raises(Decided, match="already answered"):
        tk.approvals.decide(approval_id, "approved", by="bob", how="page")
    decided = tk.approvals.decide(approval_id, "approved", by="carol", how="page")
    assert (decided.status, decided.decided_by, decided.decided_how) == ("approved", "bob, carol", "page")
    with pytest.raises(Decided, match="already decided"):
        tk.approvals.decide(approval_id, "denied", by="dave", how="page")
    assert [(d["approver"], d["decision"]) for d in tk.journal.decisions(approval_id)] == [
        ("bob", "approved"),
        ("carol", "approved"),
    ]
    tk.close()


@pytest.mark.parametrize(("threshold", "mode"), [(None, "passkey"), (5.0, "passkey"), (100.0, "form")])
async def test_plans_under_the_threshold_may_use_the_form(
    sandbox: SandboxServer, threshold: float | None, mode: str
) -> None:
    """approval_above_usd_per_hour: a $12/hour create under a $100 threshold may use the form; at $5 or
    with no threshold it needs the passkey; a delete adds nothing per hour and may always use the form."""
    from gpu_tools.approvals import mode_for
    from gpu_tools.models import Plan
    from gpu_tools.toolkit import Toolkit
    from tests.conftest import sandbox_settings

    settings = sandbox_settings(
        sandbox,
        approval="passkey",
        approval_above_usd_per_hour=threshold,
        nebius_gpu_usd_per_hour={"gpu-h100-sxm": 6.0},
    )
    tk = Toolkit(settings)
    question = await tk.question("nebius_create_endpoint", CREATE)
    assert question is not None and question.mode == mode and question.plan.usd_per_hour_max == 12.0
    delete = Plan(
        provider="nebius", operation="delete_resource", action="Delete x.", target="x", method="DELETE",
        path="/x", reversible=False, reversibility="no",
    )  # fmt: skip
    assert mode_for(settings, delete, "destroy") == ("passkey" if threshold is None else "form")
    tk.close()


async def test_under_the_threshold_a_form_client_creates_with_its_form(sandbox: SandboxServer) -> None:
    from tests.mcp_helpers import Human

    human = Human("accept", True)
    server = page_server(sandbox, approval="passkey", approval_above_usd_per_hour=100.0)
    async with Client(server, elicitation_callback=human) as c:
        done = structured(await c.call_tool("nebius_create_endpoint", CREATE))
    assert (
        done["outcome"] == "done" and len(human.messages) == 1 and "Send this request?" in human.messages[0]
    )
    server.toolkit.close()


@pytest.mark.parametrize(
    ("decision", "comes_back", "outcomes", "said"),
    [
        (None, False, ["refused"], "never decided before it expired"),
        ("denied", False, ["refused"], "denied on the approval page by carol"),
        ("approved", False, ["refused"], "approved on the approval page by carol"),
        ("denied", True, ["refused"], "denied on the approval page by carol"),
        ("approved", True, ["ok"], None),
    ],
)
async def test_every_page_question_ends_in_one_journal_row_even_when_its_call_never_comes_back(
    sandbox: SandboxServer, decision: str | None, comes_back: bool, outcomes: list[str], said: str | None
) -> None:
    """A page approval nobody decided, or decided while its call had gone, is a refusal once it
    expires (nothing was sent); one whose call came back for the decision is journaled by that call,
    once."""
    clock = FakeClock()
    tk = Toolkit(page_settings(sandbox), now=clock)
    tk.approvals.say = lambda text: None
    async with Client(build_server(toolkit=tk)) as c:
        link = structured(await c.call_tool("nebius_create_endpoint", CREATE))["approval"]
        if decision is not None:
            tk.approvals.decide(link["id"], decision, by="carol", how="page")
        if comes_back:
            await c.call_tool("nebius_create_endpoint", CREATE)
        clock.advance(3600)
        listed = structured(await c.call_tool("history", {}))["items"]
        again = structured(await c.call_tool("history", {}))["items"]
    assert [e["outcome"] for e in listed] == outcomes and listed == again
    if said is not None:
        assert said in listed[0]["error"]
    creates = [r for r in mutating_requests(sandbox) if r["method"] == "POST"]
    assert len(creates) == (outcomes == ["ok"])
    tk.close()
