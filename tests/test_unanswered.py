"""Every question ends in exactly one journal row, through the real fronts, whatever the path: a
send, a refusal by the call that came back for it (which closes it), or, when no call came back
before it expired, the refusal `settle_unanswered` writes. A question closed as refused is never
sent afterwards, whichever process closed it first."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from mcp import Client, types

from gpu_tools.errors import ConfirmationRefused
from gpu_tools.gate import Approve
from gpu_tools.guard import Guard
from gpu_tools.journal import APPROVAL_TTL
from gpu_tools.sandbox import SandboxServer
from gpu_tools.toolkit import Toolkit
from mcp_server import build_server
from tests.clock import FakeClock
from tests.conftest import mutating_requests, new_shell, sandbox_settings
from tests.mcp_helpers import Human, structured
from tests.test_approval_page import CREATE, page_settings
from tests.test_exactly_once import H100, NEBIUS

pytestmark = pytest.mark.anyio


def outcomes(tk: Toolkit) -> list[tuple[str, str | None]]:
    rows, _ = tk.journal.entries()
    return [(r.outcome, r.error) for r in rows]


class LateHuman:
    """Says yes to every question, but the first answer comes back after the question expired
    (the person went for coffee): the clock moves past the approval's lifetime before it answers."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.messages: list[str] = []

    async def __call__(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.messages.append(params.message)
        if len(self.messages) == 1:
            self.clock.advance(APPROVAL_TTL.total_seconds() + 1)
        return types.ElicitResult(action="accept", content={"confirm": True})


@pytest.mark.usefixtures("journal_backend")
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_an_answer_that_comes_back_after_its_question_expired_is_journaled_once(
    sandbox: SandboxServer, mode: str
) -> None:
    """The first question's answer arrives after it expired: 2025-11-25 refuses it ("matches no
    current question"); in 2026-07-28 the late round closes it ("came back after the question
    expired") and asks a new one. Either way the expired question is one refusal row."""
    clock = FakeClock()
    tk = Toolkit(sandbox_settings(sandbox), now=clock)
    human = LateHuman(clock)
    async with Client(build_server(toolkit=tk), elicitation_callback=human, mode=mode) as client:
        result = await client.call_tool("nebius_create_endpoint", NEBIUS)
        clock.advance(APPROVAL_TTL.total_seconds() + 1)
        listed = structured(await client.call_tool("history", {}))
    said = [(e["outcome"], e.get("error")) for e in listed["items"]]
    refused = [s for s in said if s[0] == "refused"]
    # Whatever the generation, the expired question the person answered late is one refusal row.
    assert len(refused) == 1, (mode, result.is_error, said, human.messages)
    tk.close()


async def test_gpu_magic_page_denial_is_one_journal_row(sandbox: SandboxServer) -> None:
    """`%gpu` under approval=page: the approval is denied on the page; the cell's call is refused
    and journaled by the gate (`not confirmed`), which closes the approval, so it is not settled
    again when it expires."""
    clock = FakeClock()
    settings = page_settings(sandbox, approval="page")
    shell = new_shell()
    tk = Toolkit(settings, now=clock)
    shell._gpu_magics._replace_toolkit(tk)
    tk = shell._gpu_magics.toolkit

    def denied_at_once(approval: Any, **kw: Any) -> None:
        tk.approvals.decide(approval.id, "denied", by="carol", how="page")
        return None

    tk.approvals.announce = denied_at_once  # type: ignore[method-assign]
    tk.approvals.say = lambda text: None
    with pytest.raises(ConfirmationRefused):
        shell.run_line_magic(
            "gpu",
            "nebius-create-endpoint --name nb --model-name openai/gpt-oss-20b --flavor-name base "
            "--gpu-type gpu-h100-sxm --expires-in 1h",
        )
    assert [o for o, _ in outcomes(tk)] == ["refused"]
    clock.advance(3600)
    tk.journal.settle_unanswered()
    said = outcomes(tk)
    assert mutating_requests(sandbox) == []
    assert [o for o, _ in said] == ["refused"], said  # one question, one row
    shell.extension_manager.unload_extension("ipython_ext")
    tk.close()


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_page_approval_refused_by_policy_when_its_call_comes_back_is_one_row(
    sandbox: SandboxServer, mode: str
) -> None:
    """The page approves; before the call comes back, the policy tightens (the budget is lowered).
    The call that comes back names no question (`question()` asks nothing the policy refuses), and
    its policy refusal closes the open page approval of the same plan and requester: one row."""
    clock = FakeClock()
    tk = Toolkit(page_settings(sandbox), now=clock)
    tk.approvals.say = lambda text: None
    async with Client(build_server(toolkit=tk), mode=mode) as c:
        link = structured(await c.call_tool("nebius_create_endpoint", CREATE))["approval"]
        tk.approvals.decide(link["id"], "approved", by="carol", how="page")
        tk.settings = tk.settings.model_copy(update={"budget_usd_per_day": 1.0})
        back = await c.call_tool("nebius_create_endpoint", CREATE)
        assert back.is_error
        after_call = outcomes(tk)
        clock.advance(3600)
        listed = structured(await c.call_tool("history", {}))["items"]
    assert [o for o, _ in after_call] == ["refused"] and "policy" in (after_call[0][1] or "")
    assert mutating_requests(sandbox) == []
    assert [e["outcome"] for e in listed] == ["refused"], [(e["outcome"], e["error"]) for e in listed]
    tk.close()


async def test_gpu_magic_page_wait_that_runs_out_is_one_journal_row(sandbox: SandboxServer) -> None:
    """`%gpu` under approval=page waits until the approval expires and nobody decided: the cell's
    call journals `not confirmed`, closing the question, which is not settled a second time."""
    clock = FakeClock()
    shell = new_shell()
    shell._gpu_magics._replace_toolkit(Toolkit(page_settings(sandbox, approval="page"), now=clock))
    tk = shell._gpu_magics.toolkit

    def nobody_decides(approval: Any, **kw: Any) -> None:
        clock.advance(APPROVAL_TTL.total_seconds() + 1)  # the cell waits until the approval expires
        return None

    tk.approvals.announce = nobody_decides  # type: ignore[method-assign]
    with pytest.raises(ConfirmationRefused):
        shell.run_line_magic(
            "gpu",
            "nebius-create-endpoint --name nb --model-name openai/gpt-oss-20b --flavor-name base "
            "--gpu-type gpu-h100-sxm --expires-in 1h",
        )
    tk.journal.settle_unanswered()
    said = outcomes(tk)
    assert mutating_requests(sandbox) == []
    assert [o for o, _ in said] == ["refused"], said  # one question, one row
    shell.extension_manager.unload_extension("ipython_ext")
    tk.close()


@pytest.mark.usefixtures("journal_backend")
@pytest.mark.parametrize("guard_settles", [True, False])
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_page_wait_that_ends_at_expiry_while_gpu_guard_settles_is_one_row(
    sandbox: SandboxServer, mode: str, guard_settles: bool
) -> None:
    """A call waits on the page (approval_wait) and the approval expires during the wait. With
    gpu-guard (another toolkit on the same journal) settling it meanwhile, the settled row is the one
    row and the call's refusal writes none; without the guard, the call's own refusal is the row."""
    clock = FakeClock()
    settings = page_settings(sandbox).model_copy(update={"approval_wait": "1h"})
    tk = Toolkit(settings, now=clock)
    guard_tk = Toolkit(settings, now=clock)

    def expires_while_waiting(approval: Any, **kw: Any) -> None:
        clock.advance(APPROVAL_TTL.total_seconds() + 1)
        if guard_settles:  # gpu-guard's reconciliation, in its own process, at that moment
            guard_tk.journal.settle_unanswered()
        return None

    tk.approvals.announce = expires_while_waiting  # type: ignore[method-assign]
    async with Client(build_server(toolkit=tk), mode=mode) as c:
        await c.call_tool("nebius_create_endpoint", CREATE)
        listed = structured(await c.call_tool("history", {}))["items"]
    assert mutating_requests(sandbox) == []
    assert [e["outcome"] for e in listed] == ["refused"], [(e["outcome"], e["error"]) for e in listed]
    guard_tk.close()
    tk.close()


class SettlesFirst:
    """A person who answers yes, while gpu-guard (another toolkit on the same journal, on a host
    whose clock runs a few seconds ahead) reconciles just before the answer reaches the server."""

    def __init__(self, clock: FakeClock, guard: Toolkit) -> None:
        self.clock, self.guard = clock, guard

    async def __call__(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.clock.advance(APPROVAL_TTL.total_seconds() - 2)  # 2 s left on the server's clock
        self.guard.journal.settle_unanswered()
        return types.ElicitResult(action="accept", content={"confirm": True})


def skewed(clock: FakeClock, seconds: float) -> Any:
    return lambda: clock() + timedelta(seconds=seconds)


@pytest.mark.usefixtures("journal_backend")
async def test_a_question_settled_as_refused_is_never_sent_afterwards_2026_form(
    sandbox: SandboxServer,
) -> None:
    """gpu-guard's host clock is 5 s ahead: it settles the question as "never answered, nothing was
    sent" while the server still finds it unexpired. Settling closes the approval, so the answer
    round finds it used and sends nothing: the journal never says both "refused" and "ok"."""
    clock = FakeClock()
    settings = sandbox_settings(sandbox)
    tk = Toolkit(settings, now=clock)
    guard = Toolkit(settings, now=skewed(clock, 5))
    async with Client(build_server(toolkit=tk), elicitation_callback=SettlesFirst(clock, guard)) as c:
        await c.call_tool("nebius_create_endpoint", NEBIUS)
    said = outcomes(tk)
    sent = len([r for r in mutating_requests(sandbox) if r["method"] == "POST"])
    # One question, one row; and a question journaled as refused ("nothing was sent") sends nothing.
    assert len(said) == 1 and not (sent and said[-1][0] == "refused"), (sent, said)
    guard.close()
    tk.close()


@pytest.mark.usefixtures("journal_backend")
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_page_approval_settled_as_refused_is_never_sent_afterwards(
    sandbox: SandboxServer, mode: str
) -> None:
    """The page approved; gpu-guard (clock 5 s ahead) settles the approval as "approved ... and the
    call never came back" just before the call does come back, 2 s before expiry on the server's
    clock; the call finds it closed and sends nothing."""
    clock = FakeClock()
    settings = page_settings(sandbox)
    tk = Toolkit(settings, now=clock)
    tk.approvals.say = lambda text: None
    guard = Toolkit(settings, now=skewed(clock, 5))
    async with Client(build_server(toolkit=tk), mode=mode) as c:
        link = structured(await c.call_tool("nebius_create_endpoint", CREATE))["approval"]
        tk.approvals.decide(link["id"], "approved", by="carol", how="page")
        expiry = datetime.fromisoformat(link["expires_at"])
        clock.advance((expiry - clock()).total_seconds() - 2)
        guard.journal.settle_unanswered()
        await c.call_tool("nebius_create_endpoint", CREATE)
    said = outcomes(tk)
    sent = len([r for r in mutating_requests(sandbox) if r["method"] == "POST"])
    assert len(said) == 1, (sent, said)
    guard.close()
    tk.close()


@pytest.mark.usefixtures("journal_backend")
async def test_a_page_approval_open_longer_than_the_purge_is_still_settled(sandbox: SandboxServer) -> None:
    """approval_ttl accepts any duration; `new_approval` purges approvals older than 7 days, but
    never one still open or awaited: a page approval open 8 days still gets its refusal row."""
    clock = FakeClock()
    tk = Toolkit(page_settings(sandbox, approval_ttl="8d"), now=clock)
    tk.approvals.say = lambda text: None
    async with Client(build_server(toolkit=tk)) as c:
        structured(await c.call_tool("nebius_create_endpoint", CREATE))  # approval_pending
        clock.advance(7 * 86400 + 60)  # still open: it expires after 8 days
        structured(await c.call_tool("nebius_create_endpoint", {**CREATE, "name": "next"}))
        clock.advance(86400)  # the first has expired now, undecided
        listed = structured(await c.call_tool("history", {}))["items"]
    said = [(e["outcome"], e["target"]) for e in listed]
    assert mutating_requests(sandbox) == []
    assert ("refused", "page-demo") in said, said
    tk.close()


class PriceRisesWhileAsked:
    """Answers yes; while the first question is open NeoLink's price rises tenfold."""

    def __init__(self, sandbox: SandboxServer) -> None:
        self.sandbox = sandbox
        self.messages: list[str] = []

    async def __call__(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        if not self.messages:
            httpx.post(
                f"{self.sandbox.url}/_sandbox/prices",
                json={"provider": "neolink", "gpu": "H100", "factor": 10},
            ).raise_for_status()
        self.messages.append(params.message)
        return types.ElicitResult(action="accept", content={"confirm": True})


@pytest.mark.usefixtures("journal_backend")
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_form_question_whose_plan_now_needs_the_page_is_journaled(
    sandbox: SandboxServer, mode: str
) -> None:
    """approval=page above $10/hour: the form asks about $3.50/hour; while it is open the price
    becomes $35/hour, so the answer round's `question()` goes to the approval page. The form's
    question is closed first with "the plan changed while the question was open" (2026-07-28), or
    refused by the gate (2025-11-25): either way it has its row."""
    clock = FakeClock()
    settings = sandbox_settings(
        sandbox,
        approval="page",
        approval_above_usd_per_hour=10.0,
        approval_wait="0s",
        approval_open_browser=False,
    )
    tk = Toolkit(settings, now=clock)
    tk.approvals.say = lambda text: None
    human = PriceRisesWhileAsked(sandbox)
    async with Client(build_server(toolkit=tk), elicitation_callback=human, mode=mode) as c:
        await c.call_tool("neolink_create_instance", H100)
        clock.advance(3600)  # nobody decides on the page either
        listed = structured(await c.call_tool("history", {}))["items"]
    said = [(e["outcome"], e["usd_per_hour"], e.get("error")) for e in listed]
    assert mutating_requests(sandbox) == []
    # The form question ($3.50/hour, answered yes but not used) is journaled as refused.
    assert any(o == "refused" and "plan changed" in (err or "") for o, _, err in said), (
        len(human.messages),
        said,
    )
    tk.close()


@pytest.mark.parametrize("password", ["hunter2", "Sup3rS3cretPassw0rd"])
async def test_no_registry_password_is_stored_with_a_page_question(
    sandbox: SandboxServer, password: str
) -> None:
    """The awaiting JSON and the settled refusal row take the plan, whose body the adapter masks by
    field; the page approval's `view` stores the call's arguments masked by field name too, so even
    a password too short to be registered as a known secret is stored nowhere."""
    clock = FakeClock()
    tk = Toolkit(page_settings(sandbox, approval="page", toolsets=["all"]), now=clock)
    tk.approvals.say = lambda text: None
    args = {"name": "reg", "url": "docker.io/library/me/img:1", "username": "me", "password": password}
    async with Client(build_server(toolkit=tk)) as c:
        link = structured(await c.call_tool("sesterce_create_registry", args))["approval"]
        approval = tk.journal.approval(link["id"])
        clock.advance(3600)
        listed = structured(await c.call_tool("history", {}))["items"]
    assert approval is not None and [e["outcome"] for e in listed] == ["refused"]
    assert password not in json.dumps(approval.awaiting) and password not in json.dumps(listed)
    assert password not in json.dumps(approval.view), approval.view["arguments"]
    tk.close()


@pytest.mark.usefixtures("journal_backend")
async def test_one_awaiting_plan_that_no_longer_parses_does_not_stop_every_question(
    sandbox: SandboxServer,
) -> None:
    """`settle_unanswered` runs before every new approval and every `history`; an expired awaiting
    plan it cannot parse (written by another version of gpu-tools sharing the team's journal) is
    settled with what can be read of it, and stops neither questions nor `history`."""
    clock = FakeClock()
    tk = Toolkit(sandbox_settings(sandbox), now=clock)
    poison(tk)
    clock.advance(APPROVAL_TTL.total_seconds() + 1)
    async with Client(build_server(toolkit=tk), elicitation_callback=Human()) as c:
        history = await c.call_tool("history", {})
        made = await c.call_tool("nebius_create_endpoint", NEBIUS)
    assert not history.is_error and not made.is_error, (history.content, made.content)
    assert structured(made)["outcome"] == "done"
    settled = structured(history)["items"]  # the unreadable question still has its refusal row
    assert [(e["outcome"], e["provider"], e["target"]) for e in settled] == [("refused", "nebius", "t")]
    tk.close()


def poison(tk: Toolkit) -> None:
    """An awaiting approval whose plan this version cannot parse, as another version wrote it."""
    old = tk.journal.new_approval("fp-other-version", "d", "m")
    plan = {"provider": "nebius", "operation": "nebius_create_endpoint", "action": "x", "target": "t"}
    with tk.journal._tx() as db:
        db.execute(
            "UPDATE approvals SET awaiting=? WHERE id=?",
            (json.dumps({"effect": "create", "plan": plan}), old.id),
        )


@pytest.mark.parametrize("poisoned", [True, False])
async def test_one_awaiting_plan_that_no_longer_parses_does_not_stop_gpu_guard_expiring(
    sandbox: SandboxServer, poisoned: bool
) -> None:
    """gpu-guard's pass reconciles (and settles) first: an unparseable awaiting plan does not end
    the pass, so the expired GPU is still deleted."""
    clock = FakeClock()
    tk = Toolkit(sandbox_settings(sandbox), now=clock)
    made = await tk.call("nebius_create_endpoint", {**NEBIUS, "expires_in": "1h"}, confirmer=Approve())
    assert made.outcome == "done"
    if poisoned:
        poison(tk)
    clock.advance(2 * 3600)
    guard = Guard(tk, lambda line: None, now=clock)
    try:
        actions = await guard.run_once()
    finally:
        deletes = [r for r in mutating_requests(sandbox) if r["method"] == "DELETE"]
        tk.close()
    assert len(deletes) == 1, actions
