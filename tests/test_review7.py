"""Review of 111ab78 (and 5158f1c): one row per question, a replay is its first outcome, and the
approval page says who decided. Each test fails on 111ab78 and names the scenario it covers."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client, types

from gpu_tools import errors
from gpu_tools.approvals.templates import status_of
from gpu_tools.gate import Approve
from gpu_tools.journal import APPROVAL_TTL
from gpu_tools.models import Plan
from gpu_tools.operations import MutationInput, Operation
from gpu_tools.sandbox import SandboxServer
from gpu_tools.toolkit import Toolkit
from mcp_server import build_server
from tests.clock import FakeClock
from tests.conftest import mutating_requests, sandbox_settings
from tests.mcp_helpers import Human, error_text
from tests.test_approval_page import CREATE, page_settings

pytestmark = pytest.mark.anyio

NEBIUS = {
    "name": "demo",
    "model_name": "openai/gpt-oss-20b",
    "flavor_name": "base",
    "gpu_type": "gpu-h100-sxm",
}
IMAGE = "images.neolink-ai.com/matrixdc/pytorch:2.3.0-python3.10-cuda12.1.0-devel-ubuntu22.04"
H100 = {"display_name": "moved", "image": IMAGE, "gpu_sku_id": "88"}  # NeoLink H100, $3.50/hour


def rows(tk: Toolkit) -> list[Any]:
    return tk.journal.entries(limit=1000)[0]


async def test_a_replayed_answer_round_whose_send_now_breaks_a_cap_answers_its_first_outcome(
    sandbox: SandboxServer,
) -> None:
    """2026-07-28, no idempotency key: the answer round sends; its response is lost and the client
    sends the very same round again (same request state, same answer), the replay the request state
    exists for. The instance now live counts against max_total_usd_per_hour, so the replay's
    `question()` returns None (policy) and the gate refuses by policy before it looks at the used
    approval the round names (`answers`): the client is told "Nothing was sent" about an instance
    that was created and bills. `Journal.record` even sees the question was used (it writes no row)
    and the gate still answers as if nothing had happened. Without the cap the same replay is
    `replayed` (test_exactly_once.test_a_replayed_final_round_sends_once_and_returns_the_first_outcome)."""
    server = build_server(sandbox_settings(sandbox, max_total_usd_per_hour=5))  # one H100 fits, two do not
    async with Client(server, elicitation_callback=Human()) as client:
        first = await client.session.call_tool("neolink_create_instance", H100, allow_input_required=True)
        assert isinstance(first, types.InputRequiredResult)
        [key] = first.input_requests
        yes = {key: types.ElicitResult(action="accept", content={"confirm": True})}
        answers = [
            await client.session.call_tool(
                "neolink_create_instance",
                H100,
                input_responses=yes,
                request_state=first.request_state,
                allow_input_required=True,
            )
            for _ in range(2)
        ]
    said = [
        error_text(r) if r.is_error else r.structured_content["outcome"]  # type: ignore[union-attr,index]
        for r in answers
    ]
    assert len([r for r in mutating_requests(sandbox) if r["method"] == "POST"]) == 1
    assert said == ["done", "replayed"], said


async def test_an_answer_round_whose_reread_fails_once_is_not_journaled_as_declined(
    sandbox: SandboxServer,
) -> None:
    """2026-07-28: the person answers yes; in the answer round the resolver's fresh re-read of the
    plan hits one transient provider error, so `question()` returns None and the confirm resolver
    hands the body a DeclinedElicitation ("not asked here"). The body's own plan comes from the
    cache, so the gate gets as far as `_confirmed`, and the refusal that closes the question the
    person said YES to (`answers`) reads "the user declined the confirmation". That is the question's
    one row: the journal of record says the person declined a plan they approved."""
    tk = Toolkit(sandbox_settings(sandbox))
    original = tk.gate.plan
    failed: list[bool] = []

    async def flaky(op: Operation, data: MutationInput, *, fresh: bool = False) -> Plan:
        if fresh and not failed:
            failed.append(True)
            raise errors.ProviderError("503 Service Unavailable (try again)", provider="nebius")
        return await original(op, data, fresh=fresh)

    server = build_server(toolkit=tk)
    async with Client(server, elicitation_callback=Human()) as client:
        first = await client.session.call_tool("nebius_create_endpoint", NEBIUS, allow_input_required=True)
        assert isinstance(first, types.InputRequiredResult)
        [key] = first.input_requests
        yes = {key: types.ElicitResult(action="accept", content={"confirm": True})}
        tk.gate.plan = flaky  # type: ignore[method-assign]
        answer = await client.session.call_tool(
            "nebius_create_endpoint",
            NEBIUS,
            input_responses=yes,
            request_state=first.request_state,
            allow_input_required=True,
        )
    assert failed and isinstance(answer, types.CallToolResult) and answer.is_error
    assert mutating_requests(sandbox) == []
    [row] = rows(tk)
    assert row.outcome == "refused"
    assert "declined" not in (row.error or ""), row.error  # the person said yes
    tk.close()


async def test_a_key_used_between_the_runs_check_and_the_reservation_leaves_one_row(
    sandbox: SandboxServer,
) -> None:
    """The question is asked and answered yes; while this call re-reads the price just before the
    send, another call (another process of the same user) sends with the same idempotency key and
    other arguments. `reserve` finds the key used (`Reservation.key_row`) and `Sender.send` calls
    `replay_key` without `closes`: a plain refused row is written and the question stays open and
    awaited, so `settle_unanswered` later journals it again as "asked, never answered". One call,
    one question, two refused rows (the run-start key check closes the question; this path does not)."""
    clock = FakeClock()
    tk = Toolkit(sandbox_settings(sandbox), now=clock)
    op = "nebius_create_endpoint"
    args = {**NEBIUS, "idempotency_key": "k-race"}
    question = await tk.question(op, args)
    assert question is not None
    original = tk.gate.plan
    raced: list[bool] = []

    async def other_sends_meanwhile(o: Operation, data: MutationInput, *, fresh: bool = False) -> Plan:
        if fresh and not raced:  # this call's re-read just before the send
            raced.append(True)
            other = {**NEBIUS, "name": "other", "idempotency_key": "k-race"}
            done = await tk.call(op, other, confirmer=Approve())
            assert done.outcome == "done"  # type: ignore[attr-defined]
        return await original(o, data, fresh=fresh)

    tk.gate.plan = other_sends_meanwhile  # type: ignore[method-assign]
    with pytest.raises(errors.InvalidInput, match="different arguments"):
        await tk.call(op, args, confirmer=Approve(), approval_id=question.approval.id)
    clock.advance(APPROVAL_TTL.total_seconds() + 1)
    tk.journal.settle_unanswered()
    said = [(r.outcome, r.error) for r in rows(tk)]
    assert raced and [o for o, _ in said].count("ok") == 1, said  # the other call's send
    assert [o for o, _ in said].count("refused") == 1, said  # this call's one question
    tk.close()


async def test_a_page_denial_collected_by_the_notebook_still_says_who_denied_it(
    sandbox: SandboxServer,
) -> None:
    """%gpu under approval=page: the cell waits for the page, carol denies, and the magic calls the
    gate with `Approve(decided.status == "approved")`, i.e. Approve(False) (ipython_ext/magics.py
    `_run`). `_confirmed` runs before `_approval`, so the refusal that closes the page approval says
    "not confirmed", and since 5158f1c the page's `status_of` shows a refused-closed approval
    before its denial: "Refused at ...: not confirmed." Carol's denial is gone from the page and
    the journal row (over MCP, `on_the_page` passes Approve() and the row says "denied ... by carol")."""
    clock = FakeClock()
    tk = Toolkit(page_settings(sandbox, approval="page"), now=clock)
    tk.approvals.say = lambda text: None
    question = await tk.question("nebius_create_endpoint", CREATE, client="%gpu")
    assert question is not None and question.on_the_page
    tk.approvals.decide(question.approval.id, "denied", by="carol", how="page")
    with pytest.raises(errors.ConfirmationRefused):
        await tk.call(
            "nebius_create_endpoint", CREATE, confirmer=Approve(False), approval_id=question.approval.id
        )
    approval = tk.journal.approval(question.approval.id)
    assert approval is not None
    _, sentence = status_of(approval)
    [row] = rows(tk)
    assert mutating_requests(sandbox) == []
    assert "carol" in sentence, sentence  # the page says who denied it
    assert "denied" in (row.error or ""), row.error  # and so does the journal
    tk.close()
