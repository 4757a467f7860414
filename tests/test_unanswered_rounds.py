"""One row per question, continued: answer rounds whose front asks nothing (policy, key, plan),
cancelled calls, settling that races a cap refusal, sent approvals purged, and a plan that moves
from the form to the approval page, through the real fronts."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp import Client, types

from gpu_tools.errors import GpuToolsError
from gpu_tools.gate import Approve
from gpu_tools.journal import APPROVAL_TTL
from gpu_tools.sandbox import SandboxServer
from gpu_tools.toolkit import Toolkit
from mcp_server import build_server
from tests.clock import FakeClock
from tests.conftest import mutating_requests, new_shell, sandbox_settings
from tests.mcp_helpers import Human, structured
from tests.test_approval_page import CREATE, page_settings
from tests.test_exactly_once import NEBIUS

pytestmark = pytest.mark.anyio


def rows(tk: Toolkit) -> list[tuple[str, str | None]]:
    entries, _ = tk.journal.entries()
    return [(r.outcome, r.error) for r in entries]


class BudgetCutWhileAsked:
    """Answers yes; while the question is open, the team's budget is cut below the plan's price
    (a policy change, a config reload), so the answer round's plan is refused by policy."""

    def __init__(self, tk: Toolkit) -> None:
        self.tk = tk
        self.messages: list[str] = []

    async def __call__(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.messages.append(params.message)
        self.tk.settings = self.tk.settings.model_copy(update={"budget_usd_per_day": 1.0})
        return types.ElicitResult(action="accept", content={"confirm": True})


@pytest.mark.usefixtures("journal_backend")
async def test_2026_answer_round_refused_by_policy_is_one_row_per_question(sandbox: SandboxServer) -> None:
    """2026-07-28: the first round asks; the budget is cut while the question is open; the answer
    round's front asks nothing (policy), and the call's policy refusal closes the question its
    earlier round asked (`answers`): one question, one refused row, never settled again."""
    clock = FakeClock()
    tk = Toolkit(sandbox_settings(sandbox), now=clock)
    human = BudgetCutWhileAsked(tk)
    async with Client(build_server(toolkit=tk), elicitation_callback=human, mode="auto") as c:
        result = await c.call_tool("nebius_create_endpoint", NEBIUS)
    assert result.is_error and len(human.messages) == 1
    after_call = rows(tk)
    clock.advance(APPROVAL_TTL.total_seconds() + 1)
    tk.journal.settle_unanswered()
    said = rows(tk)
    assert mutating_requests(sandbox) == []
    assert len(after_call) == 1 and "policy" in (after_call[0][1] or ""), after_call
    assert said == after_call, said  # the question the call came back for is not journaled again
    tk.close()


class WalksAway:
    """A 2025-11-25 client whose user closes the chat while the confirmation is shown: the client
    cancels the tool call (notifications/cancelled) and never answers the elicitation."""

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()
        self.messages: list[str] = []

    async def __call__(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.messages.append(params.message)
        self.scope.cancel()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")


async def test_legacy_call_cancelled_while_asked_leaves_its_question_with_one_row(
    sandbox: SandboxServer,
) -> None:
    """2025-11-25: the client cancels the call while the question is shown. Every question is
    awaited from when it is asked, so once it expires `settle_unanswered` gives it its one row."""
    clock = FakeClock()
    tk = Toolkit(sandbox_settings(sandbox), now=clock)
    human = WalksAway()
    async with Client(build_server(toolkit=tk), elicitation_callback=human, mode="legacy") as c:
        with human.scope:
            await c.call_tool("nebius_create_endpoint", NEBIUS)
    assert len(human.messages) == 1
    clock.advance(APPROVAL_TTL.total_seconds() + 1)
    tk.journal.settle_unanswered()
    assert mutating_requests(sandbox) == []
    assert [o for o, _ in rows(tk)] == ["refused"], rows(tk)  # one question, one row
    tk.close()


def test_postgres_cap_refusal_racing_settlement_writes_one_row(pg_url: str) -> None:
    """PostgreSQL: `reserve` reads the approval unused, then its cap refuses while gpu-guard (another
    process, no lock between them) settles the expired question. The cap refusal's close finds the
    question closed, so the reservation ends as a replay of that close: one row, the guard's.
    (SQLite cannot interleave here: its `BEGIN IMMEDIATE` blocks the guard's write.)"""
    from gpu_tools.journal import Journal
    from gpu_tools.models import Plan

    clock = FakeClock()
    server, guard = Journal.open(pg_url, now=clock), Journal.open(pg_url, now=clock)
    plan = Plan(
        provider="nebius", operation="nebius_create_endpoint", action="Create x.", target="x",
        method="POST", path="/x", reversible=True, reversibility="delete it", usd_per_hour=10.0,
    )  # fmt: skip
    asked = server.new_approval("fp", "digest", "Create x?", awaiting=(plan, "create"))
    clock.advance(APPROVAL_TTL.total_seconds() + 1)  # the answer came back just as it expired

    def cap_while_guard_settles(view: Any) -> str:
        assert guard.settle_unanswered() == 1  # gpu-guard's pass, in its own process
        return "budget_usd_per_day: over budget."

    reservation = server.reserve(
        plan,
        "create",
        idempotency_key=None,
        args_hash=None,
        approval_id=asked.id,
        expires_at=None,
        kind=None,
        cap=cap_while_guard_settles,
    )
    entries, _ = server.entries()
    said = [(e.outcome, e.error) for e in entries]
    server.close()
    guard.close()
    assert reservation.used is not None and reservation.used.refused is not None  # the guard's close stands
    assert len(said) == 1, said  # one question, one row


class KeyUsedWhileAsked:
    """Answers yes; while the question is open, another call (a notebook cell, another agent of the
    same local user) sends with the same idempotency key and other arguments."""

    def __init__(self, tk: Toolkit) -> None:
        self.tk = tk
        self.messages: list[str] = []

    async def __call__(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.messages.append(params.message)
        other = {**NEBIUS, "name": "other", "idempotency_key": "k-1"}
        done = await self.tk.call("nebius_create_endpoint", other, confirmer=Approve())
        assert done.outcome == "done"
        return types.ElicitResult(action="accept", content={"confirm": True})


async def test_2026_answer_round_refused_for_its_key_is_one_row_per_question(sandbox: SandboxServer) -> None:
    """2026-07-28: while the question is open another call uses its idempotency key with other
    arguments; the answer round's refusal (key reused) closes the question: one row for it."""
    clock = FakeClock()
    tk = Toolkit(sandbox_settings(sandbox), now=clock)
    human = KeyUsedWhileAsked(tk)
    async with Client(build_server(toolkit=tk), elicitation_callback=human, mode="auto") as c:
        result = await c.call_tool("nebius_create_endpoint", {**NEBIUS, "idempotency_key": "k-1"})
    assert result.is_error and len(human.messages) == 1
    clock.advance(APPROVAL_TTL.total_seconds() + 1)
    tk.journal.settle_unanswered()
    said = rows(tk)
    assert [o for o, _ in said].count("ok") == 1, said  # the other call's send
    assert [o for o, _ in said].count("refused") == 1, said  # this call's one question
    tk.close()


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_page_approval_whose_call_comes_back_unplannable_is_one_row(
    sandbox: SandboxServer, mode: str
) -> None:
    """The page approves; before the call comes back its plan can no longer be made (here the
    provider was taken out of allowed_providers; an offer withdrawn or an outage does the same).
    The call's refusal ("the plan could not be made") closes the open page approval it came back
    for: one row, and no approved approval left open for a later call."""
    clock = FakeClock()
    tk = Toolkit(page_settings(sandbox), now=clock)
    tk.approvals.say = lambda text: None
    async with Client(build_server(toolkit=tk), mode=mode) as c:
        link = structured(await c.call_tool("nebius_create_endpoint", CREATE))["approval"]
        tk.approvals.decide(link["id"], "approved", by="carol", how="page")
        tk.settings = tk.settings.model_copy(update={"allowed_providers": ["sesterce"]})
        tk.gate._plans.clear()  # the plan cache's PLAN_TTL (monotonic seconds) has passed meanwhile
        back = await c.call_tool("nebius_create_endpoint", CREATE)
        assert back.is_error
        after_call = rows(tk)
        clock.advance(3600)
        tk.journal.settle_unanswered()
    said = rows(tk)
    assert mutating_requests(sandbox) == []
    assert len(after_call) == 1 and "could not be made" in (after_call[0][1] or ""), after_call
    assert said == after_call, said  # the approval the call came back for is not journaled again
    tk.close()


@pytest.mark.parametrize("how", ["legacy-form", "2026-form", "page"])  # legacy-form: the control
async def test_a_sent_approval_is_purged_after_a_week_like_any_used_one(
    sandbox: SandboxServer, how: str
) -> None:
    """`new_approval` purges approvals older than a week unless still awaited or open; a send
    clears its approval's wait, so sent approvals are purged like any used one."""
    clock = FakeClock()
    settings = page_settings(sandbox, approval="page") if how == "page" else sandbox_settings(sandbox)
    tk = Toolkit(settings, now=clock)
    tk.approvals.say = lambda text: None
    mode = "legacy" if how == "legacy-form" else "auto"
    async with Client(build_server(toolkit=tk), elicitation_callback=Human(), mode=mode) as c:
        first = await c.call_tool("nebius_create_endpoint", NEBIUS)
        if how == "page":
            link = structured(first)["approval"]
            tk.approvals.decide(link["id"], "approved", by="carol", how="page")
            first = await c.call_tool("nebius_create_endpoint", NEBIUS)
        assert structured(first)["outcome"] == "done", structured(first)
        with tk.journal._read() as db:
            (sent,) = [r["id"] for r in db.execute("SELECT id FROM approvals WHERE consumed_at IS NOT NULL")]
        clock.advance(8 * 86400)
        await c.call_tool("nebius_create_endpoint", {**NEBIUS, "name": "a-week-later"})
    assert tk.journal.approval(sent) is None, tk.journal.approval(sent)  # purged like any used one
    tk.close()


def test_gpu_magic_page_approval_whose_plan_fails_after_the_wait_is_one_row(sandbox: SandboxServer) -> None:
    """`%gpu` under approval=page: the cell waits, the page approves, and by the time the cell's
    call runs the plan can no longer be made: the refusal closes the approval the cell named."""
    clock = FakeClock()
    shell = new_shell()
    shell._gpu_magics._replace_toolkit(Toolkit(page_settings(sandbox, approval="page"), now=clock))
    tk = shell._gpu_magics.toolkit
    tk.approvals.say = lambda text: None

    def approved_then_provider_dropped(approval: Any, **kw: Any) -> None:
        tk.approvals.decide(approval.id, "approved", by="carol", how="page")
        tk.settings = tk.settings.model_copy(update={"allowed_providers": ["sesterce"]})
        tk.gate._plans.clear()  # the wait outlasted PLAN_TTL (monotonic seconds)
        return None

    tk.approvals.announce = approved_then_provider_dropped  # type: ignore[method-assign]
    with pytest.raises(GpuToolsError):
        shell.run_line_magic(
            "gpu",
            "nebius-create-endpoint --name nb --model-name openai/gpt-oss-20b --flavor-name base "
            "--gpu-type gpu-h100-sxm --expires-in 1h",
        )
    after_cell = rows(tk)
    clock.advance(3600)
    tk.journal.settle_unanswered()
    said = rows(tk)
    shell.extension_manager.unload_extension("ipython_ext")
    tk.close()
    assert mutating_requests(sandbox) == []
    assert len(after_cell) == 1 and "could not be made" in (after_cell[0][1] or ""), after_cell
    assert said == after_cell, said  # one question, one row


async def test_legacy_ask_again_does_not_refuse_a_page_question_nobody_saw(sandbox: SandboxServer) -> None:
    """2025-11-25, approval=page above $10/hour: the form asks about $3.50/hour; the price becomes
    $35/hour before the send, so the gate refuses (PlanChanged) and `_ask_again` asks about the new
    plan. `question()` now answers with a page approval: `_ask_again` sends the person its link
    (URL-mode elicitation) and waits for the page, never asking it with a form whose yes the gate
    would refuse, and the page approval stays open for the person to decide."""
    from tests.test_unanswered import H100, PriceRisesWhileAsked

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
    async with Client(build_server(toolkit=tk), elicitation_callback=human, mode="legacy") as c:
        await c.call_tool("neolink_create_instance", H100)
    with tk.journal._read() as db:
        page = [
            dict(r) for r in db.execute("SELECT id, consumed_at, result FROM approvals WHERE mode='page'")
        ]
    assert mutating_requests(sandbox) == []
    # The new plan's question is the approval page's link (URL mode), never a form.
    assert len(human.messages) == 2, [m[:80] for m in human.messages]
    assert human.messages[1].startswith("Approve on the gpu-tools approval page"), human.messages[1][:80]
    assert page and all(p["consumed_at"] is None for p in page), page  # nor closed unseen
    tk.close()


async def test_a_form_question_whose_policy_now_wants_the_page_is_closed_with_why(
    sandbox: SandboxServer,
) -> None:
    """2026-07-28: the form asks; before the answer comes back the policy switches to approval=page
    (the plan is unchanged). The answer round closes the form's question, saying the page is now in
    force, and asks on the page: each question ends in one row, and none says "no answer came back"."""
    clock = FakeClock()
    tk = Toolkit(page_settings(sandbox), now=clock)
    tk.approvals.say = lambda text: None
    async with Client(build_server(toolkit=tk), elicitation_callback=Human()) as client:
        first = await client.session.call_tool("nebius_create_endpoint", CREATE, allow_input_required=True)
        assert isinstance(first, types.InputRequiredResult)
        [key] = first.input_requests
        tk.settings = tk.settings.model_copy(update={"approval": "page"})
        await client.session.call_tool(
            "nebius_create_endpoint",
            CREATE,
            input_responses={key: types.ElicitResult(action="accept", content={"confirm": True})},
            request_state=first.request_state,
            allow_input_required=True,
        )
        clock.advance(3600)  # nobody decides on the page
        listed = structured(await client.call_tool("history", {}))["items"]
    errors = [e["error"] or "" for e in listed]
    assert mutating_requests(sandbox) == []
    assert [e["outcome"] for e in listed] == ["refused", "refused"], errors  # the form's, the page's
    assert any("approval=page is now in force" in e for e in errors), errors
    assert not any("no answer came back" in e for e in errors), errors
    tk.close()
