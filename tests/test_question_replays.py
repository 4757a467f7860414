"""A call that comes back for a question already closed answers with its first outcome; an answer
round that asked nothing never journals a "declined"; a key used just before the send closes the
question; a page decision collected by a notebook says who decided."""

from __future__ import annotations

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
from tests.test_exactly_once import H100, NEBIUS, rows

pytestmark = pytest.mark.anyio


async def test_a_replayed_answer_round_whose_send_now_breaks_a_cap_answers_its_first_outcome(
    sandbox: SandboxServer,
) -> None:
    """2026-07-28, no idempotency key: the answer round sends; its response is lost and the client
    sends the very same round again. The instance now live breaks max_total_usd_per_hour, yet the
    round names its used question, so the call answers with the first outcome (`replayed`) before
    any policy check: never "Nothing was sent" about an instance that bills."""
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
    """2026-07-28: the person answers yes; in the answer round the fresh re-read of the plan hits one
    transient provider error, so no question is asked this round. The refusal closing the person's
    question says the plan could not be checked, never that the person declined."""
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
    send, another call of the same user sends with the same idempotency key and other arguments.
    The reservation's key refusal closes this call's question: one refused row, never settled again."""
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
    """%gpu under approval=page: carol denies on the page and the magic collects the decision with
    Approve(False): the refusal row and the page both say carol denied it, not "not confirmed"."""
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


@pytest.mark.parametrize("failure", ["passing", "lasting"])
async def test_a_page_approval_survives_a_passing_failure_of_its_call(
    sandbox: SandboxServer, failure: str
) -> None:
    """The page approves; the call that comes back for it cannot be planned. A passing failure (an
    outage) journals the call's refusal and leaves the approval open, so the retry sends with it;
    a lasting one (not found) closes it with that refusal: one row for the question either way."""
    tk = Toolkit(page_settings(sandbox, approval="page"))
    tk.approvals.say = lambda text: None
    question = await tk.question("nebius_create_endpoint", CREATE, client="%gpu")
    assert question is not None and question.on_the_page
    tk.approvals.decide(question.approval.id, "approved", by="carol", how="page")
    original = tk.gate.plan
    error = (
        errors.ProviderUnavailable("503 Service Unavailable", provider="nebius")
        if failure == "passing"
        else errors.NotFound("flavor not found", provider="nebius")
    )

    async def fails_once(op: Operation, data: MutationInput, *, fresh: bool = False) -> Plan:
        tk.gate.plan = original  # type: ignore[method-assign]
        raise error

    tk.gate.plan = fails_once  # type: ignore[method-assign]
    with pytest.raises(type(error)):
        await tk.call("nebius_create_endpoint", CREATE, confirmer=Approve(), approval_id=question.approval.id)
    approval = tk.journal.approval(question.approval.id)
    assert approval is not None
    if failure == "lasting":
        assert approval.refused is not None and "flavor not found" in approval.refused
        with pytest.raises(errors.ConfirmationRefused, match="already answered"):
            await tk.call(
                "nebius_create_endpoint", CREATE, confirmer=Approve(), approval_id=question.approval.id
            )
        assert mutating_requests(sandbox) == []
        assert [r.outcome for r in rows(tk)] == ["refused"]
    else:
        assert approval.consumed_at is None  # still the person's approval, for the retry
        done = await tk.call(
            "nebius_create_endpoint", CREATE, confirmer=Approve(), approval_id=question.approval.id
        )
        assert done.outcome == "done"  # type: ignore[attr-defined]
        assert len([r for r in mutating_requests(sandbox) if r["method"] == "POST"]) == 1
        assert [r.outcome for r in rows(tk)] == ["ok", "refused"]  # the retry's send, the outage's refusal
    tk.close()
