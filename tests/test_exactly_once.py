"""Nothing spent by surprise: every approved change is sent at most once, and nothing else is sent.

Each test replays one way the promise broke (issue 9's cases 1-9) through a real front (the SDK's
mcp.Client in both protocol generations, or the toolkit the fronts share) against the sandbox, and
counts what reached the provider and what the journal holds.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from IPython.core.error import UsageError
from mcp import Client, StdioServerParameters, types
from mcp.client.session import ClientSession
from mcp.shared.exceptions import MCPError
from pydantic import SecretStr

from gpu_tools import errors
from gpu_tools.gate import PLAN_TTL, Approve
from gpu_tools.guard import Guard
from gpu_tools.journal import APPROVAL_TTL
from gpu_tools.sandbox import SandboxServer
from gpu_tools.sandbox.sesterce import H100_1
from gpu_tools.settings import Settings
from gpu_tools.toolkit import Toolkit
from mcp_server import build_server
from tests.clock import FakeClock
from tests.conftest import (
    LosesAnswers,
    journal_text,
    mutating_requests,
    nebius_endpoint_made_elsewhere,
    sandbox_settings,
    stdio_env,
)
from tests.mcp_helpers import Human, error_text, structured

# The journal's behaviour, on both backends.
pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("journal_backend")]

MODES = ["auto", "legacy"]
NEBIUS = {
    "name": "demo",
    "model_name": "openai/gpt-oss-20b",
    "flavor_name": "base",
    "gpu_type": "gpu-h100-sxm",
}
IMAGE = "images.neolink-ai.com/matrixdc/pytorch:2.3.0-python3.10-cuda12.1.0-devel-ubuntu22.04"
CREATES: dict[str, tuple[str, dict[str, Any]]] = {
    "nebius": ("nebius_create_endpoint", NEBIUS),
    "sesterce": (
        "sesterce_create_endpoint",
        {
            "name": "lost-1",
            "model_id": "llama-3.1-8b-instruct",
            "hardware_id": H100_1,
            "regions": [{"region_id": 78, "min": 1, "max": 1}],
        },
    ),
    "neolink": ("neolink_create_instance", {"display_name": "lost-1", "image": IMAGE, "gpu_sku_id": "88"}),
}


def creates_at(sandbox: SandboxServer, provider: str) -> list[dict[str, Any]]:
    return [r for r in mutating_requests(sandbox) if r["provider"] == provider and r["method"] == "POST"]


# The create's own path: the price a create re-reads just before it is sent (Sesterce's is a POST
# preview) is answered as usual.
CREATE_PATHS = {"sesterce": "/instances"}


def rows(tk: Toolkit) -> list[Any]:
    return tk.journal.entries(limit=1000)[0]


# ---- case 1: a create whose answer is lost -------------------------------------------------------
@pytest.fixture
def losing() -> LosesAnswers:
    return LosesAnswers()


@pytest.fixture
def lossy(sandbox: SandboxServer, losing: LosesAnswers) -> Iterator[Toolkit]:
    """A toolkit whose transport loses the answers a test picks (`losing.lose_next`), with no clock
    involved, and reconciles without a grace period."""
    toolkit = Toolkit(sandbox_settings(sandbox, reconcile_grace_seconds=0), transport=losing)
    yield toolkit
    toolkit.close()


@pytest.mark.parametrize("provider", ["nebius", "sesterce", "neolink"])
async def test_a_lost_create_answer_stays_unknown_is_never_resent_and_is_reconciled(
    lossy: Toolkit, losing: LosesAnswers, sandbox: SandboxServer, provider: str
) -> None:
    tk = lossy  # the create reaches the sandbox, which makes the resource; its answer is lost
    name, args = CREATES[provider]
    args = {**args, "idempotency_key": "job-42"}
    await tk.call(name, {**args, "dry_run": True})  # plans (Sesterce's price previews are POSTs too)
    losing.lose_next("POST", CREATE_PATHS.get(provider))

    with pytest.raises(errors.OutcomeUnknown) as lost:
        await tk.call(name, args, confirmer=Approve())
    assert "may have reached the provider" in str(lost.value) and "Nothing will be resent" in str(lost.value)
    [row] = rows(tk)
    assert row.outcome == "unknown" and row.resource_id is None
    # Unknown counts as live, at the planned cost, until it is resolved.
    assert [e.outcome for e in tk.journal.live()] == ["unknown"]

    # The agent retries with the same key: refused, nothing sent again.
    with pytest.raises(errors.ConfirmationRefused, match="outcome is unknown"):
        await tk.call(name, args, confirmer=Approve())
    assert len(creates_at(sandbox, provider)) == 1

    # The provider did answer the create, to a client that had given up on it: that changes nothing.
    [create] = creates_at(sandbox, provider)
    [(method, path)] = losing.lost
    assert method == "POST" and path.endswith(create["path"])
    assert [r.outcome for r in rows(tk)] == ["refused", "unknown"] and len(creates_at(sandbox, provider)) == 1
    report = await tk.call("reconcile", {})
    [item] = report.items
    assert item.outcome == "ok" and item.resource_id and report.unresolved == 0
    _, row = rows(tk)
    assert row.outcome == "ok" and row.resource_id == item.resource_id and "reconciled" in (row.note or "")
    assert [e.resource_id for e in tk.journal.live()] == [item.resource_id]

    # Now the same key answers with the resource the provider holds; still one create.
    replay = await tk.call(name, args, confirmer=Approve())
    assert replay.outcome == "replayed" and replay.resource.resource_id == item.resource_id
    assert len(creates_at(sandbox, provider)) == 1


async def test_a_create_the_provider_never_made_is_reconciled_as_failed(
    lossy: Toolkit, sandbox: SandboxServer
) -> None:
    tk = lossy  # nothing to lose here: a 503 answers at once, with no short timeout to beat
    httpx.post(
        f"{sandbox.url}/_sandbox/faults",
        json={"provider": "nebius", "status": 503, "methods": ["POST"], "count": 1},
    )
    with pytest.raises(errors.OutcomeUnknown, match="HTTP 503"):
        await tk.call("nebius_create_endpoint", NEBIUS, confirmer=Approve())
    report = await tk.call("reconcile", {})
    assert [i.outcome for i in report.items] == [
        "failed"
    ] and "holds no resource named 'demo'" in report.items[0].note
    assert tk.journal.live() == []


async def test_unknown_rows_within_the_grace_period_stay_unknown(sandbox: SandboxServer) -> None:
    tk = Toolkit(sandbox_settings(sandbox))  # default grace: 120 s
    httpx.post(
        f"{sandbox.url}/_sandbox/faults",
        json={"provider": "nebius", "status": 503, "methods": ["POST"], "count": 1},
    )
    with pytest.raises(errors.OutcomeUnknown):
        await tk.call("nebius_create_endpoint", NEBIUS, confirmer=Approve())
    report = await tk.call("reconcile", {})
    assert [i.outcome for i in report.items] == ["unknown"] and report.unresolved == 1
    spend = await tk.call("spend", {})
    [line] = spend.items
    assert line.status == "unknown" and line.resource_id.startswith("journal#")
    tk.close()


async def test_netmind_endpoints_cannot_be_found_by_name_so_they_stay_unknown(
    lossy: Toolkit, losing: LosesAnswers
) -> None:
    tk = lossy
    flavors = await tk.call("list_offers", {"provider": "netmind", "kind": "endpoint"})
    losing.lose_next("POST")
    args = {
        "name": "lost-ep",
        "flavor_id": flavors.items[0].offer_id,
        "image_url": "python:3.10-slim",
        "port": 8080,
    }
    with pytest.raises(errors.OutcomeUnknown):
        await tk.call("netmind_create_endpoint", args, confirmer=Approve())
    assert [m for m, _ in losing.lost] == ["POST"]
    report = await tk.call("reconcile", {})
    [item] = report.items
    assert item.outcome == "unknown" and "NetMind console" in item.note


# ---- case 2: one approval replayed into several creates ------------------------------------------
async def test_a_replayed_final_round_sends_once_and_returns_the_first_outcome(
    sandbox: SandboxServer,
) -> None:
    server = build_server(sandbox_settings(sandbox))
    async with Client(server, elicitation_callback=Human()) as client:
        first = await client.session.call_tool("nebius_create_endpoint", NEBIUS, allow_input_required=True)
        assert isinstance(first, types.InputRequiredResult)
        [key] = first.input_requests
        yes = {key: types.ElicitResult(action="accept", content={"confirm": True})}
        rounds = [
            await client.session.call_tool(
                "nebius_create_endpoint",
                NEBIUS,
                input_responses=yes,
                request_state=first.request_state,
                allow_input_required=True,
            )
            for _ in range(4)
        ]
    outcomes = [r.structured_content["outcome"] for r in rounds]  # type: ignore[union-attr]
    assert outcomes == ["done", "replayed", "replayed", "replayed"]
    ids = {r.structured_content["resource"]["resource_id"] for r in rounds}  # type: ignore[union-attr]
    assert len(ids) == 1 and len(creates_at(sandbox, "nebius")) == 1
    assert [e.outcome for e in rows(server.toolkit)] == ["ok"]


async def test_a_new_call_with_the_same_arguments_is_a_new_question(sandbox: SandboxServer) -> None:
    human = Human()
    server = build_server(sandbox_settings(sandbox))
    async with Client(server, elicitation_callback=human) as client:
        one = structured(await client.call_tool("nebius_create_endpoint", NEBIUS))
        two = structured(await client.call_tool("nebius_create_endpoint", NEBIUS))
    assert (one["outcome"], two["outcome"]) == ("done", "done") and len(human.messages) == 2
    assert one["resource"]["resource_id"] != two["resource"]["resource_id"]
    assert human.messages[0].splitlines()[-3] != human.messages[1].splitlines()[-3]  # two approvals


H100 = {"display_name": "moved", "image": IMAGE, "gpu_sku_id": "88"}  # NeoLink H100: 25 CNY, $3.50/hour


def move_price(sandbox: SandboxServer, provider: str, gpu: str, factor: float) -> None:
    httpx.post(
        f"{sandbox.url}/_sandbox/prices", json={"provider": provider, "gpu": gpu, "factor": factor}
    ).raise_for_status()


class MovesThePrice(Human):
    """Answers yes, and while the first question is open the provider's price moves tenfold."""

    def __init__(self, sandbox: SandboxServer) -> None:
        super().__init__()
        self.sandbox = sandbox

    async def __call__(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        if not self.messages:
            move_price(self.sandbox, "neolink", "H100", 10)
        return await super().__call__(context, params)


@pytest.mark.parametrize("mode", MODES)
async def test_a_price_that_rose_past_the_cap_while_asked_sends_nothing(
    sandbox: SandboxServer, mode: str
) -> None:
    human = MovesThePrice(sandbox)
    server = build_server(sandbox_settings(sandbox, max_usd_per_hour=10))
    async with Client(server, elicitation_callback=human, mode=mode) as client:
        result = await client.call_tool("neolink_create_instance", H100)
    text = error_text(result)
    assert "max_usd_per_hour: $35.00/hour is over the cap of $10/hour" in text and "Nothing was sent" in text
    assert "price $3.50/hour -> $35.00/hour" in text  # what changed, old -> new, in both generations
    assert len(human.messages) == 1 and "$3.50/hour" in human.messages[0]
    assert creates_at(sandbox, "neolink") == []
    journal = rows(server.toolkit)
    assert [e.outcome for e in journal] == ["refused"] and "max_usd_per_hour" in (journal[0].error or "")
    assert "$3.50/hour -> $35.00/hour" in (journal[0].error or "")
    assert journal[0].usd_per_hour == pytest.approx(35.0)


@pytest.mark.parametrize("mode", MODES)
async def test_a_plan_that_changed_while_asked_is_asked_again_and_sent_at_the_new_price(
    sandbox: SandboxServer, mode: str
) -> None:
    human = MovesThePrice(sandbox)
    server = build_server(sandbox_settings(sandbox))
    async with Client(server, elicitation_callback=human, mode=mode) as client:
        made = structured(await client.call_tool("neolink_create_instance", H100))
    assert len(human.messages) == 2
    assert "$3.50/hour" in human.messages[0] and "$35.00/hour" in human.messages[1]
    assert human.messages[1].startswith(
        "The plan changed since you were asked: price $3.50/hour -> $35.00/hour"
    )
    assert human.messages[1].count("changed") == 1  # said once, in both protocol generations
    approvals = [m.rsplit("(approval ", 1)[1].split(")")[0] for m in human.messages]
    assert approvals[0] != approvals[1]
    assert made["outcome"] == "done" and made["plan"]["usd_per_hour"] == pytest.approx(35.0)
    assert len(creates_at(sandbox, "neolink")) == 1
    journal = rows(server.toolkit)
    assert [e.outcome for e in journal] == ["ok", "refused"]  # newest first
    assert journal[0].usd_per_hour == pytest.approx(35.0)
    assert "the plan changed" in (journal[1].error or "") and "$3.50/hour -> $35.00/hour" in (
        journal[1].error or ""
    )
    used = server.toolkit.journal.approval(approvals[1])
    unused = server.toolkit.journal.approval(approvals[0])
    assert used is not None and used.consumed_at is not None
    assert unused is not None and unused.refused is not None  # closed by its refusal row, never sent
    assert unused.journal_id == journal[1].id


async def test_a_price_that_cannot_be_read_again_at_the_send_sends_nothing(sandbox: SandboxServer) -> None:
    tk = Toolkit(sandbox_settings(sandbox))
    question = await tk.question("neolink_create_instance", H100)
    assert question is not None
    httpx.post(
        f"{sandbox.url}/_sandbox/faults", json={"provider": "neolink", "status": 503, "methods": ["GET"]}
    ).raise_for_status()
    with pytest.raises(errors.ConfirmationRefused, match="could not be read again .* Nothing was sent"):
        await tk.call("neolink_create_instance", H100, confirmer=Approve(), approval_id=question.approval.id)
    assert creates_at(sandbox, "neolink") == []
    [row] = rows(tk)
    assert row.outcome == "refused" and "could not be read again" in (row.error or "")
    tk.close()


async def test_over_stdio_a_plan_that_changed_while_asked_is_asked_again(
    sandbox: SandboxServer, gpu_home: Path
) -> None:
    env = stdio_env(
        gpu_home,
        NEOLINK_API_TOKEN="sandbox-key",
        NEOLINK_NAMESPACE="sandbox-user",
        NEOLINK_BASE_URL=f"{sandbox.url}/neolink/mdc/api/v1",
    )
    server = StdioServerParameters(command=sys.executable, args=["-m", "mcp_server"], env=env)
    human = MovesThePrice(sandbox)
    async with Client(server, elicitation_callback=human) as client:
        made = structured(await client.call_tool("neolink_create_instance", H100))
        history = structured(await client.call_tool("history", {}))
    assert len(human.messages) == 2 and "$35.00/hour" in human.messages[1]
    assert made["plan"]["usd_per_hour"] == pytest.approx(35.0) and len(creates_at(sandbox, "neolink")) == 1
    assert [(e["outcome"], e["usd_per_hour"]) for e in history["items"]] == [
        ("ok", pytest.approx(35.0)),
        ("refused", pytest.approx(35.0)),
    ]


class PlanKeptTooLong:
    """The gate's plan cache clock, moved past PLAN_TTL by hand."""

    def __init__(self) -> None:
        self.at = 1000.0

    def __call__(self) -> float:
        return self.at


async def test_a_question_answered_after_its_kept_plan_expired_is_refused_showing_old_and_new(
    sandbox: SandboxServer,
) -> None:
    """The answer comes back after the plan kept for the question expired (PLAN_TTL) and the plan
    built again differs: the gate refuses with old and new before any send, and journals it."""
    tk = Toolkit(sandbox_settings(sandbox, offers_cache_ttl=0))
    tk.gate.clock = clock = PlanKeptTooLong()
    question = await tk.question("neolink_create_instance", H100)
    assert question is not None and "$3.50/hour" in question.text
    move_price(sandbox, "neolink", "H100", 10)
    clock.at += PLAN_TTL + 1
    with pytest.raises(errors.PlanChanged) as raised:
        await tk.call("neolink_create_instance", H100, confirmer=Approve(), approval_id=question.approval.id)
    said = str(raised.value)
    assert (
        "the plan changed after the question was asked: price $3.50/hour -> $35.00/hour. Nothing was sent"
        in said
    ), said
    assert raised.value.change == "price $3.50/hour -> $35.00/hour"
    assert creates_at(sandbox, "neolink") == []
    [row] = rows(tk)
    assert row.outcome == "refused" and row.usd_per_hour == pytest.approx(35.0)
    assert row.error == ("the plan changed after the question was asked: price $3.50/hour -> $35.00/hour")
    closed = tk.journal.approval(question.approval.id)
    assert closed is not None and closed.refused is not None and closed.journal_id == row.id
    with pytest.raises(errors.ConfirmationRefused, match="already answered"):  # a replayed yes sends nothing
        await tk.call("neolink_create_instance", H100, confirmer=Approve(), approval_id=question.approval.id)
    assert creates_at(sandbox, "neolink") == [] and len(rows(tk)) == 1
    tk.close()


async def test_a_password_registered_while_asked_cannot_break_the_description_of_a_change(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A password equal to a word the plan holds as a type ("instance", its kind) is registered by
    another call while the question is open: what changed is still said, and journaled."""
    monkeypatch.setattr(errors, "_known_secrets", dict(errors._known_secrets))  # this test's, then gone
    tk = Toolkit(sandbox_settings(sandbox, offers_cache_ttl=0))
    tk.gate.clock = clock = PlanKeptTooLong()
    question = await tk.question("neolink_create_instance", H100)
    assert question is not None
    registry = {"name": "r", "url": "docker.io/acme/a:1", "username": "u", "password": "instance"}
    await tk.call("sesterce_create_registry", {**registry, "dry_run": True})
    move_price(sandbox, "neolink", "H100", 10)
    clock.at += PLAN_TTL + 1
    with pytest.raises(errors.PlanChanged, match=r"price \$3.50/hour -> \$35.00/hour"):
        await tk.call("neolink_create_instance", H100, confirmer=Approve(), approval_id=question.approval.id)
    [row] = rows(tk)
    assert row.outcome == "refused" and "price $3.50/hour -> $35.00/hour" in (row.error or "")
    assert creates_at(sandbox, "neolink") == []
    tk.close()


async def test_a_change_smaller_than_a_cent_is_said_with_the_decimals_that_show_it(
    sandbox: SandboxServer,
) -> None:
    tk = Toolkit(sandbox_settings(sandbox))
    question = await tk.question("neolink_create_instance", H100)
    assert question is not None and "~$3.50/hour" in question.text
    move_price(sandbox, "neolink", "H100", 1.001)
    with pytest.raises(errors.PlanChanged) as raised:
        await tk.call("neolink_create_instance", H100, confirmer=Approve(), approval_id=question.approval.id)
    assert raised.value.change == "price $3.500/hour -> $3.503/hour", raised.value.change
    assert creates_at(sandbox, "neolink") == []
    tk.close()


def test_a_change_is_said_only_where_its_figures_differ() -> None:
    from gpu_tools.gate.identity import describe_change
    from gpu_tools.models import Plan

    base = {"provider": "netmind", "operation": "x", "action": "Scale x", "target": "t", "method": "PUT"}
    plan = Plan(**base, path="/x", reversible=True, reversibility="r", usd_per_hour=3.5)
    stated = plan.model_copy(update={"usd_per_hour_max": 3.5})  # the same figure, now stated as a maximum
    assert describe_change(plan, stated) == "what is sent (now $3.50/hour: Scale x)"
    wider = plan.model_copy(update={"usd_per_hour_max": 7.0})
    assert describe_change(wider, wider.model_copy(update={"usd_per_hour_max": 7.01})) == (
        "price $3.50-$7.00/hour -> $3.50-$7.01/hour"
    )


async def test_an_approval_is_marked_in_flight_before_any_other_call_can_see_it_used(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The moment the intent row commits, a racing call may read the approval used: the send must
    already count as in progress then ("is being used right now"), never as of unknown outcome."""
    tk = Toolkit(sandbox_settings(sandbox))
    question = await tk.question("neolink_create_instance", H100)
    assert question is not None
    seen: list[tuple[int | None, bool]] = []
    reserve = tk.journal.reserve

    def reserve_then_look(*args: Any, **kw: Any) -> Any:
        reserved = reserve(*args, **kw)  # committed: what a racing call would read now
        used = tk.journal.approval(question.approval.id)
        assert used is not None
        seen.append((used.journal_id, used.journal_id in tk.gate.in_flight))
        return reserved

    monkeypatch.setattr(tk.journal, "reserve", reserve_then_look)
    made = await tk.call(
        "neolink_create_instance", H100, confirmer=Approve(), approval_id=question.approval.id
    )
    assert made.outcome == "done" and seen == [(rows(tk)[0].id, True)]
    assert tk.gate.in_flight == set()  # and no longer once its outcome is journaled
    tk.close()


class AnswersLate(MovesThePrice):
    """Moves the price while the first question is open, and answers after the plan kept expired."""

    def __init__(self, sandbox: SandboxServer, clock: PlanKeptTooLong) -> None:
        super().__init__(sandbox)
        self.clock = clock

    async def __call__(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        if not self.messages:
            self.clock.at += PLAN_TTL + 1
        return await super().__call__(context, params)


@pytest.mark.parametrize("mode", MODES)
async def test_through_mcp_an_answer_after_the_kept_plan_expired_is_asked_again(
    sandbox: SandboxServer, mode: str
) -> None:
    tk = Toolkit(sandbox_settings(sandbox, offers_cache_ttl=0))
    tk.gate.clock = clock = PlanKeptTooLong()
    human = AnswersLate(sandbox, clock)
    server = build_server(toolkit=tk)
    async with Client(server, elicitation_callback=human, mode=mode) as client:
        made = structured(await client.call_tool("neolink_create_instance", H100))
    assert len(human.messages) == 2, human.messages
    assert human.messages[1].startswith(
        "The plan changed since you were asked: price $3.50/hour -> $35.00/hour"
    )
    assert made["outcome"] == "done" and made["plan"]["usd_per_hour"] == pytest.approx(35.0)
    assert len(creates_at(sandbox, "neolink")) == 1
    journal = rows(tk)
    assert [e.outcome for e in journal] == ["ok", "refused"]
    assert "$3.50/hour -> $35.00/hour" in (journal[1].error or "")
    tk.close()


def test_in_a_notebook_a_plan_that_changed_while_asked_is_asked_again_in_the_same_cell(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """y/N open, the price moves tenfold: the cell says what changed, asks again, and sends once at
    the price of the second yes. `--yes` was typed for the first plan only: the cell ends, unsent."""
    from tests.conftest import new_shell

    shell = new_shell()
    shell._gpu_magics._replace_toolkit(Toolkit(sandbox_settings(sandbox)))
    asked: list[str] = []

    def answer(prompt: str = "") -> str:
        if not asked:
            move_price(sandbox, "neolink", "H100", 10)
        asked.append(prompt)
        return "y"

    monkeypatch.setattr("builtins.input", answer)
    line = f"neolink-create-instance --display-name nb --gpu-sku-id 88 --image {IMAGE}"
    made = shell.run_line_magic("gpu", line)
    shown = capsys.readouterr().out
    assert len(asked) == 2 and made.result.outcome == "done"  # type: ignore[union-attr]
    assert made.result.plan.usd_per_hour == pytest.approx(35.0)  # type: ignore[union-attr]
    assert "The plan changed since you were asked: price $3.50/hour -> $35.00/hour." in shown
    assert shown.index("$3.50/hour") < shown.index("asking again") < shown.rindex("$35.00/hour")
    assert len(creates_at(sandbox, "neolink")) == 1
    rows_ = shell.run_line_magic("gpu", "history").result.items  # type: ignore[union-attr]
    assert [(e.outcome, e.usd_per_hour) for e in rows_] == [("ok", 35.0), ("refused", 35.0)]

    import ipython_ext.magics as magics_module

    moved = iter([True])  # the price moves once, just after the plan is shown
    shown_plan = magics_module.display

    def display_and_move(*a: Any, **kw: Any) -> None:
        shown_plan(*a, **kw)
        if next(moved, False):
            move_price(sandbox, "neolink", "H100", 2)

    monkeypatch.setattr(magics_module, "display", display_and_move)
    with pytest.raises(errors.PlanChanged, match=r"price \$35.00/hour -> \$70.00/hour"):
        shell.run_line_magic("gpu", line.replace("nb", "typed") + " --yes")
    assert len(creates_at(sandbox, "neolink")) == 1  # nothing more was sent
    shell.extension_manager.unload_extension("ipython_ext")


async def test_the_send_reads_the_price_again_even_within_the_plan_cache(sandbox: SandboxServer) -> None:
    """A dry run then a yes a moment later: the plan cache holds the old price, the send does not."""
    tk = Toolkit(sandbox_settings(sandbox))
    shown = await tk.call("neolink_create_instance", {**H100, "dry_run": True})
    assert shown.plan.usd_per_hour == pytest.approx(3.5)
    question = await tk.question("neolink_create_instance", H100)
    assert question is not None and "$3.50/hour" in question.text
    move_price(sandbox, "neolink", "H100", 1.1)
    with pytest.raises(errors.PlanChanged, match=r"price \$3.50/hour -> \$3.85/hour"):
        await tk.call("neolink_create_instance", H100, confirmer=Approve(), approval_id=question.approval.id)
    assert creates_at(sandbox, "neolink") == []
    [row] = rows(tk)
    assert row.outcome == "refused" and row.usd_per_hour == pytest.approx(3.85)
    again = await tk.question("neolink_create_instance", H100)
    assert again is not None and "$3.85/hour" in again.text
    made = await tk.call("neolink_create_instance", H100, confirmer=Approve(), approval_id=again.approval.id)
    assert made.outcome == "done" and made.plan.usd_per_hour == pytest.approx(3.85)
    assert rows(tk)[0].usd_per_hour == pytest.approx(3.85) and len(creates_at(sandbox, "neolink")) == 1
    tk.close()


# ---- issue 19, case 2: starts meet the total cap ------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
async def test_starting_stopped_instances_meets_the_total_cap(sandbox: SandboxServer, mode: str) -> None:
    """Cap $8/h, instances at $3.50/h: two made and stopped, two more made; neither start is sent."""
    sandbox.sandbox.ready_after = 0
    human = Human()
    server = build_server(sandbox_settings(sandbox, max_total_usd_per_hour=8))
    async with Client(server, elicitation_callback=human, mode=mode) as client:

        async def create(name: str) -> dict[str, Any]:
            made = structured(
                await client.call_tool("neolink_create_instance", {**H100, "display_name": name})
            )
            return {"provider": "neolink", "resource_id": made["resource"]["resource_id"]}

        first = [await create(f"s{i}") for i in range(2)]
        for ref in first:
            structured(await client.call_tool("stop_resource", ref))
        for i in range(2):
            await create(f"n{i}")
        asked = len(human.messages)
        starts = [error_text(await client.call_tool("start_resource", ref)) for ref in first]
    assert all(
        "max_total_usd_per_hour" in t and "$7.00/hour" in t and "Nothing was sent" in t for t in starts
    )
    assert len(human.messages) == asked  # refused before anyone was asked
    sent = [(r["method"], r["path"].rsplit("/", 1)[-1]) for r in mutating_requests(sandbox)]
    assert sent.count(("POST", "power_on")) == 0 and sent.count(("POST", "power_off")) == 2
    assert len(creates_at(sandbox, "neolink")) == 6  # four creates, two power-offs
    refused = [e for e in rows(server.toolkit) if e.outcome == "refused"]
    assert [e.operation for e in refused] == ["start_resource", "start_resource"]


# ---- a live resource of unknown cost never counts as free ------------------------------------------
async def test_a_live_resource_of_unknown_cost_counts_at_its_offer_price_or_refuses(
    sandbox: SandboxServer,
) -> None:
    """A Nebius endpoint made while Nebius had no price (its cost never journaled) is live. With a
    total cap it counts at the offer price of its GPUs when one is known ($6 x 2 GPUs at max scale),
    and with none known, a change that raises the cost is refused before anyone is asked, naming it;
    deleting it takes it out of the count."""
    sandbox.sandbox.ready_after = 0
    free = Toolkit(sandbox_settings(sandbox))
    made = await free.call("nebius_create_endpoint", {**NEBIUS, "max_replicas": 2}, confirmer=Approve())
    rid = made.resource.resource_id
    assert made.plan.usd_per_hour_max is None and [e.usd_per_hour for e in free.journal.live()] == [None]
    free.close()

    human = Human()
    priced = build_server(
        sandbox_settings(sandbox, max_total_usd_per_hour=20, nebius_gpu_usd_per_hour={"gpu-h100-sxm": 6.0})
    )
    async with Client(priced, elicitation_callback=human) as client:
        structured(await client.call_tool("neolink_create_instance", H100))  # $12 + $3.50 <= $20
        over = error_text(await client.call_tool("nebius_create_endpoint", {**NEBIUS, "name": "two"}))
    assert (
        "max_total_usd_per_hour: live and in-flight resources cost $15.50/hour and this plan $6.00/hour, "
        "$21.50/hour in all, over the cap of $20/hour" in over
    )
    assert len(human.messages) == 1 and len(creates_at(sandbox, "nebius")) == 1
    priced.toolkit.close()

    human = Human()
    blind = build_server(sandbox_settings(sandbox, max_total_usd_per_hour=20))
    async with Client(blind, elicitation_callback=human) as client:
        refused = error_text(await client.call_tool("neolink_create_instance", {**H100, "display_name": "b"}))
        spend = structured(await client.call_tool("spend", {}))
        structured(await client.call_tool("delete_resource", {"provider": "nebius", "resource_id": rid}))
        after = structured(await client.call_tool("neolink_create_instance", {**H100, "display_name": "c"}))
    assert f"max_total_usd_per_hour: the hourly cost of live nebius {rid} ('demo') is unknown" in refused
    assert "set nebius_gpu_usd_per_hour" in refused and "Delete it or stop it" in refused
    assert "Nothing was sent" in refused and after["outcome"] == "done"
    assert len(human.messages) == 2  # the delete and the last create: the refused one asked nobody
    [line] = [i for i in spend["items"] if i["resource_id"] == rid]
    assert line.get("usd_per_hour") is None and spend["total_usd_per_hour"] == pytest.approx(3.5)
    assert any(f"no price known for: {rid}" in n and "lower than the truth" in n for n in spend["notes"])
    assert len(creates_at(sandbox, "neolink")) == 2
    refusals = [e for e in rows(blind.toolkit) if e.outcome == "refused"]  # newest first, one journal
    assert [e.operation for e in refusals] == ["neolink_create_instance", "nebius_create_endpoint"]
    assert rid in (refusals[0].error or "") and "$21.50/hour in all" in (refusals[1].error or "")
    blind.toolkit.close()


async def test_a_budget_refuses_while_a_live_resource_has_no_known_cost_and_a_stop_lifts_it(
    sandbox: SandboxServer,
) -> None:
    sandbox.sandbox.ready_after = 0
    free = Toolkit(sandbox_settings(sandbox))
    made = await free.call("nebius_create_endpoint", NEBIUS, confirmer=Approve())
    ref = {"provider": "nebius", "resource_id": made.resource.resource_id}
    free.close()
    human = Human()
    server = build_server(sandbox_settings(sandbox, budget_usd_per_day=100))
    async with Client(server, elicitation_callback=human, mode="legacy") as client:
        refused = error_text(await client.call_tool("neolink_create_instance", H100))
        structured(await client.call_tool("stop_resource", ref))  # a stop never raises the cost
        after = structured(await client.call_tool("neolink_create_instance", H100))
    assert f"budget_usd_per_day: the hourly cost of live nebius {ref['resource_id']}" in refused
    assert after["outcome"] == "done" and len(human.messages) == 2
    assert len(creates_at(sandbox, "neolink")) == 1
    server.toolkit.close()


# ---- case 3: unknown arguments ---------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
async def test_unknown_arguments_are_refused_with_the_closest_valid_one(
    sandbox: SandboxServer, mode: str
) -> None:
    human = Human()
    server = build_server(sandbox_settings(sandbox))
    async with Client(server, elicitation_callback=human, mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["nebius_create_endpoint"].input_schema["additionalProperties"] is False
        for wrong in ("dryRun", "dry-run", "dryrun", "DRY_RUN", "dry_run "):
            result = await client.call_tool("nebius_create_endpoint", {**NEBIUS, wrong: True})
            text = error_text(result)
            assert (
                f"unknown argument {wrong!r} (did you mean 'dry_run'?)" in text and "Nothing was sent" in text
            )
        typo = error_text(await client.call_tool("nebius_create_endpoint", {**NEBIUS, "gpu_cnt": 8}))
        assert "did you mean 'gpu_count'" in typo
        bad = error_text(await client.call_tool("nebius_create_endpoint", {**NEBIUS, "gpu_count": "many"}))
        assert "gpu_count" in bad and "pydantic" not in bad and "errors.pydantic.dev" not in bad
        read = error_text(await client.call_tool("list_offers", {"gpuu": "H100"}))
        assert "did you mean 'gpu'" in read
    assert human.messages == [] and mutating_requests(sandbox) == []
    journal = rows(server.toolkit)
    assert len(journal) == 7 and {e.outcome for e in journal} == {"refused"}
    assert all("invalid input" in (e.error or "") for e in journal)


# ---- case 4: a loose yes ---------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("answer", ["yes", 1, "true"])
async def test_only_the_boolean_true_is_a_yes(sandbox: SandboxServer, mode: str, answer: object) -> None:
    server = build_server(sandbox_settings(sandbox))
    async with Client(server, elicitation_callback=Human(confirm=answer), mode=mode) as client:  # type: ignore[arg-type]
        result = await client.call_tool("nebius_create_endpoint", NEBIUS)
    assert "not confirmed" in error_text(result) and "Nothing was sent" in error_text(result)
    assert mutating_requests(sandbox) == []
    assert [e.outcome for e in rows(server.toolkit)] == ["refused"]


# ---- case 5: idempotency keys are scoped -------------------------------------------------------
async def test_idempotency_keys_are_scoped_to_provider_and_operation_and_bound_to_arguments(
    tk: Toolkit, sandbox: SandboxServer
) -> None:
    first = await tk.call("nebius_create_endpoint", {**NEBIUS, "idempotency_key": "k1"}, confirmer=Approve())
    name, args = CREATES["neolink"]
    other = await tk.call(name, {**args, "idempotency_key": "k1"}, confirmer=Approve())
    assert other.outcome == "done" and other.resource.provider == "neolink"
    same = await tk.call("nebius_create_endpoint", {**NEBIUS, "idempotency_key": "k1"}, confirmer=Approve())
    assert same.outcome == "replayed" and same.resource.resource_id == first.resource.resource_id
    with pytest.raises(
        errors.InvalidInput, match=r"first used at .* nebius_create_endpoint for demo .*different"
    ):
        await tk.call(
            "nebius_create_endpoint", {**NEBIUS, "gpu_count": 2, "idempotency_key": "k1"}, confirmer=Approve()
        )
    assert len(creates_at(sandbox, "nebius")) == 1 and len(creates_at(sandbox, "neolink")) == 1


# ---- case 6: every refusal is journaled ---------------------------------------------------------
class Failing:
    async def __call__(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        raise RuntimeError("the form crashed")


class Malformed:
    def __init__(self, content: dict[str, Any] | None) -> None:
        self.content = content

    async def __call__(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content=self.content)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "callback",
    [
        Human(action="decline"),
        Human(action="cancel"),
        Human(confirm=False),
        Malformed(None),
        Malformed({"confirm": "yes"}),
        Malformed({"something": True}),
    ],
    # A client with no elicitation at all is not refused: it gets the approval page (test_approval_page).
    ids=["decline", "cancel", "false", "no-content", "string", "wrong-field"],
)
async def test_every_refusal_is_journaled_and_readable(
    sandbox: SandboxServer, mode: str, callback: Any
) -> None:
    server = build_server(sandbox_settings(sandbox))
    async with Client(server, elicitation_callback=callback, mode=mode) as client:
        result = await client.call_tool("nebius_create_endpoint", NEBIUS)
    text = error_text(result)
    assert "Nothing was sent" in text or "nothing was sent" in text
    assert "Resolver" not in text and "Traceback" not in text
    assert mutating_requests(sandbox) == []
    assert [e.outcome for e in rows(server.toolkit)] == ["refused"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("settings", "tool", "args", "why"),
    [
        ({"read_only": True}, "nebius_create_endpoint", NEBIUS, "this server is read-only"),
        (
            {"allowed_providers": ["sesterce"]},
            "nebius_create_endpoint",
            NEBIUS,
            "provider nebius is not in allowed_providers",
        ),
        (
            {"toolsets": ["reads", "lifecycle"]},
            "neolink_create_instance",
            CREATES["neolink"][1],
            "its tool set 'neolink' is not enabled. Start gpu-mcp with --toolsets default,neolink",
        ),
    ],
    ids=["read-only", "provider-not-allowed", "toolset-not-enabled"],
)
async def test_a_hidden_tool_is_refused_as_hidden_and_journaled(
    sandbox: SandboxServer, mode: str, settings: dict[str, Any], tool: str, args: dict[str, Any], why: str
) -> None:
    human = Human()
    server = build_server(sandbox_settings(sandbox, **settings))
    async with Client(server, elicitation_callback=human, mode=mode) as client:
        assert tool not in {t.name for t in (await client.list_tools()).tools}
        text = error_text(await client.call_tool(tool, args))
    assert f"{tool} is hidden: {why}" in text and "Nothing was sent" in text
    assert "confirmation" not in text and "unknown tool" not in text.lower()
    assert human.messages == [] and sandbox.sandbox.requests == []  # not even a read to plan it
    [row] = rows(server.toolkit)
    assert row.outcome == "refused" and f"hidden tool: {tool} is hidden" in (row.error or "")


async def test_a_tool_hidden_for_want_of_credentials_says_how_to_configure(sandbox: SandboxServer) -> None:
    settings = sandbox_settings(sandbox).model_copy(update={"neolink_api_token": None})
    server = build_server(settings)
    async with Client(server, elicitation_callback=Human()) as client:
        text = error_text(await client.call_tool("neolink_create_instance", CREATES["neolink"][1]))
    assert "neolink_create_instance is hidden: provider neolink has no credentials" in text
    assert "NEOLINK_API_TOKEN" in text and sandbox.sandbox.requests == []
    assert [e.outcome for e in rows(server.toolkit)] == ["refused"]


@pytest.mark.parametrize("mode", MODES)
async def test_a_key_reused_with_other_arguments_is_a_journaled_refusal(
    sandbox: SandboxServer, mode: str
) -> None:
    server = build_server(sandbox_settings(sandbox))
    async with Client(server, elicitation_callback=Human(), mode=mode) as client:
        structured(await client.call_tool("nebius_create_endpoint", {**NEBIUS, "idempotency_key": "k9"}))
        other = {**NEBIUS, "name": "other", "idempotency_key": "k9"}
        text = error_text(await client.call_tool("nebius_create_endpoint", other))
    assert "with different arguments" in text and "Nothing was sent" in text
    assert len(creates_at(sandbox, "nebius")) == 1
    refused, ok = rows(server.toolkit)
    assert (refused.outcome, ok.outcome) == ("refused", "ok")
    assert "idempotency key reused with other arguments" in (refused.error or "")


@pytest.mark.parametrize("mode", MODES)
async def test_a_key_whose_first_use_is_unknown_is_a_journaled_refusal_and_never_resent(
    lossy: Toolkit, losing: LosesAnswers, sandbox: SandboxServer, mode: str
) -> None:
    server = build_server(toolkit=lossy)
    args = {**H100, "idempotency_key": "job-7"}
    async with Client(server, elicitation_callback=Human(), mode=mode) as client:
        losing.lose_next("POST")
        lost = error_text(await client.call_tool("neolink_create_instance", args))
        again = error_text(await client.call_tool("neolink_create_instance", args))
    assert "may have reached the provider" in lost
    assert "outcome is unknown" in again and "nothing was sent again" in again
    assert len(creates_at(sandbox, "neolink")) == 1
    assert [m for m, _ in losing.lost] == ["POST"]
    refused, unknown = rows(lossy)
    assert (refused.outcome, unknown.outcome) == ("refused", "unknown")
    assert "idempotency key reused while its first use is unknown" in (refused.error or "")


async def test_a_failing_legacy_callback_is_a_journaled_refusal(sandbox: SandboxServer) -> None:
    server = build_server(sandbox_settings(sandbox))
    async with Client(server, elicitation_callback=Failing(), mode="legacy") as client:
        result = await client.call_tool("nebius_create_endpoint", NEBIUS)
    assert "not confirmed" in error_text(result) and "Nothing was sent" in error_text(result)
    assert mutating_requests(sandbox) == [] and [e.outcome for e in rows(server.toolkit)] == ["refused"]


@pytest.mark.parametrize("mode", MODES)
async def test_a_failing_callback_is_a_journaled_refusal_in_both_generations(
    sandbox: SandboxServer, mode: str
) -> None:
    """2025-11-25 asks inside the call and journals the failure at once; a 2026-07-28 client whose
    callback fails never comes back with an answer, so the question, left with it, is journaled as
    refused once it expires (by the next question, `history`, or gpu-guard's reconciliation)."""
    clock = FakeClock()
    tk = Toolkit(sandbox_settings(sandbox), now=clock)
    server = build_server(toolkit=tk)
    async with Client(server, elicitation_callback=Failing(), mode=mode) as client:
        if mode == "legacy":
            failure = error_text(await client.call_tool("nebius_create_endpoint", NEBIUS))
            assert "not confirmed" in failure and "the form crashed" in failure
        else:  # the SDK's client gives up the call: its callback's error is raised to its caller
            with pytest.raises(ExceptionGroup) as raised:
                await client.call_tool("nebius_create_endpoint", NEBIUS)
            assert raised.group_contains(RuntimeError, match="the form crashed", depth=None)
        before = [e.outcome for e in rows(tk)]
        clock.advance(APPROVAL_TTL.total_seconds() + 1)
        listed = structured(await client.call_tool("history", {}))
        again = structured(await client.call_tool("history", {}))
    assert mutating_requests(sandbox) == []
    assert [e["outcome"] for e in listed["items"]] == ["refused"] == [e["outcome"] for e in again["items"]]
    if mode == "legacy":
        assert before == ["refused"] and "the client could not ask the user" in listed["items"][0]["error"]
    else:
        assert before == []  # asked, and not answered yet: nothing to say until it expires
        error = listed["items"][0]["error"]
        assert "asked, never answered" in error and "no answer came back before it expired" in error
        row = rows(tk)[0]  # the plan the question showed
        assert (row.provider, row.operation, row.effect, row.target) == (
            "nebius",
            "nebius_create_endpoint",
            "create",
            "demo",
        )
        assert row.method == "POST" and row.body["name"] == "demo"
    tk.close()


async def test_gpu_guard_journals_a_question_left_unanswered_when_nobody_else_looks(
    sandbox: SandboxServer,
) -> None:
    clock = FakeClock()
    tk = Toolkit(sandbox_settings(sandbox), now=clock)
    async with Client(build_server(toolkit=tk), elicitation_callback=Failing(), mode="auto") as client:
        with pytest.raises(ExceptionGroup) as raised:
            await client.call_tool("nebius_create_endpoint", NEBIUS)
    assert raised.group_contains(RuntimeError, match="the form crashed", depth=None)
    guard = Guard(tk, lambda line: None, now=clock)
    assert await guard.run_once() == [] and rows(tk) == []  # not expired yet: it may still be answered
    clock.advance(APPROVAL_TTL.total_seconds() + 1)
    await guard.run_once()
    await guard.run_once()
    assert [(e.outcome, e.operation) for e in rows(tk)] == [("refused", "nebius_create_endpoint")]
    assert mutating_requests(sandbox) == []
    tk.close()


@pytest.mark.parametrize(
    ("human", "outcome"),
    [
        (Human(), "ok"),
        (Human(confirm=False), "refused"),
        (Human("decline"), "refused"),
        (Human("cancel"), "refused"),
    ],
)
async def test_an_answered_question_is_journaled_once_and_never_settled_as_unanswered(
    sandbox: SandboxServer, human: Human, outcome: str
) -> None:
    clock = FakeClock()
    tk = Toolkit(sandbox_settings(sandbox), now=clock)
    async with Client(build_server(toolkit=tk), elicitation_callback=human, mode="auto") as client:
        await client.call_tool("nebius_create_endpoint", NEBIUS)
        clock.advance(APPROVAL_TTL.total_seconds() + 1)
        listed = structured(await client.call_tool("history", {}))
    assert [e["outcome"] for e in listed["items"]] == [outcome]
    assert len(creates_at(sandbox, "nebius")) == (outcome == "ok")
    tk.close()


@pytest.mark.parametrize("mode", MODES)
async def test_a_url_only_client_is_never_asked_a_form_and_gets_the_page(
    sandbox: SandboxServer, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = ClientSession._build_capabilities

    def url_only(self: ClientSession, version: str) -> types.ClientCapabilities:
        caps = build(self, version)
        return caps.model_copy(
            update={"elicitation": types.ElicitationCapability(url=types.UrlElicitationCapability())}
        )

    monkeypatch.setattr(ClientSession, "_build_capabilities", url_only)
    human = Human()
    server = build_server(sandbox_settings(sandbox, approval_wait="0s", approval_open_browser=False))
    server.toolkit.approvals.say = lambda text: None
    async with Client(server, elicitation_callback=human, mode=mode) as client:
        result = await client.call_tool("nebius_create_endpoint", NEBIUS)
    pending = structured(result)
    assert pending["outcome"] == "approval_pending" and pending["approval"]["url"].startswith(
        "http://localhost:"
    )
    # No form, ever; a 2025-11-25 session is sent the link to open (URL mode), a 2026-07-28 one reads it.
    assert all(m.startswith("Approve on the gpu-tools approval page") for m in human.messages)
    assert mutating_requests(sandbox) == [] and rows(server.toolkit) == []
    server.toolkit.close()


# ---- case 7: the configured key is redacted everywhere ---------------------------------------------
KEY = "nm-key-Zx81-echoed-by-the-provider"


async def test_a_provider_echo_of_the_api_key_is_redacted_from_results_and_confirmations(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    image = {
        "id": 7,
        "name": "mine",
        "image_name": "me/app",
        "image_tag": "1",
        "image_label": "x",
        "options": f"-e NETMIND_API_KEY={KEY}",
        "image_type": 2,
    }
    tk = Toolkit(Settings(netmind_api_key=SecretStr(KEY)))
    with respx.mock(base_url="https://api.netmind.ai") as api:
        api.get("/v1/rentgpu/images/").respond(200, json=[image])
        api.get("/v1/rentgpu/images/7").respond(200, json=image)
        api.post("/v1/rentgpu/images/").respond(200, json=image)
        listed = await tk.call("netmind_list_images", {})
        got = await tk.call("netmind_get_image", {"image_id": 7, "reveal_secrets": True})
        args = {
            "name": "mine",
            "image_name": "me/app",
            "image_tag": "1",
            "image_label": "x",
            "options": f"-e NETMIND_API_KEY={KEY}",
        }
        question = await tk.question("netmind_create_image", args)
        made = await tk.call("netmind_create_image", args, confirmer=Approve())
        sent = api.calls[-1].request.content.decode()
    assert KEY in sent  # the provider still gets what the user asked to send
    texts = [
        listed.model_dump_json(),
        got.model_dump_json(),
        question.text,
        made.model_dump_json(),
        caplog.text,
    ]
    texts += [e.model_dump_json() for e in rows(tk)]
    assert all(KEY not in t for t in texts) and "***" in listed.model_dump_json()
    tk.close()


def test_the_log_filter_redacts_registered_secrets() -> None:
    Settings(nebius_api_key=SecretStr("log-secret-9911"))
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "calling with %s", ("log-secret-9911",), None)
    assert errors.RedactingFilter().filter(record) and "log-secret-9911" not in record.getMessage()


# ---- case 9: caps count creates in flight -----------------------------------------------------------
async def test_concurrent_creates_can_never_together_pass_the_total_cap(sandbox: SandboxServer) -> None:
    name, args = CREATES["neolink"]
    probe = Toolkit(sandbox_settings(sandbox))
    price = (await probe.call(name, {**args, "dry_run": True})).plan.usd_per_hour
    probe.close()
    tk = Toolkit(sandbox_settings(sandbox, max_total_usd_per_hour=price * 1.5))
    httpx.post(
        f"{sandbox.url}/_sandbox/faults", json={"provider": "neolink", "latency": 0.3, "methods": ["POST"]}
    )

    calls = [tk.call(name, {**args, "display_name": f"c{i}"}, confirmer=Approve()) for i in range(5)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    done = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(done) == 1 and [type(r) for r in refused] == [errors.PolicyRefused] * 4
    assert all("max_total_usd_per_hour" in str(r) for r in refused)
    assert len(creates_at(sandbox, "neolink")) == 1
    assert sorted(e.outcome for e in rows(tk)) == ["ok", "refused", "refused", "refused", "refused"]
    tk.close()


# ---- errors that say what to do; ids checked before sending -------------------------------------------
async def test_a_429_says_when_to_retry_and_a_read_timeout_says_who_and_how_long() -> None:
    tk = Toolkit(Settings(nebius_api_key=SecretStr("k-429-test"), http_timeout=2))
    with respx.mock(base_url="https://api.tokenfactory.nebius.com") as api:
        api.get("/v0/dedicated_endpoints").respond(
            429, json={"detail": "slow down"}, headers={"Retry-After": "45"}
        )
        with pytest.raises(errors.RateLimited, match="Retry after 45 s"):
            await tk.adapters["nebius"].list_resources()
        api.get("/v0/dedicated_endpoints").mock(side_effect=httpx.ReadTimeout("slow"))
        with pytest.raises(
            errors.ProviderTimeout, match=r"nebius: no answer within 2s to GET /v0/dedicated_endpoints"
        ):
            await tk.adapters["nebius"].list_resources()
    tk.close()


@pytest.mark.parametrize("bad", ["..", "a/b", "../../ai-inference", "x\n", "x" * 300, "a?b=1", "%2e%2e"])
async def test_ids_that_could_leave_their_path_are_refused_before_any_request(bad: str) -> None:
    tk = Toolkit(Settings(sesterce_api_key=SecretStr("k-ids-test")))
    with respx.mock(base_url="https://api.cloud.sesterce.com", assert_all_called=False) as api:
        route = api.route()
        for name, args in (
            ("get_resource", {"provider": "sesterce", "resource_id": bad}),
            ("delete_resource", {"provider": "sesterce", "resource_id": bad}),
            ("sesterce_delete_registry", {"registry_id": bad}),
        ):
            with pytest.raises(
                errors.InvalidInput, match="valid id|characters long|at most [0-9]+ characters|spaces"
            ):
                await tk.call(name, args, confirmer=Approve())
        assert route.call_count == 0
    tk.close()


# ---- the same through stdio and the magic ---------------------------------------------------------------
async def test_the_magic_reports_a_lost_answer_in_one_line_and_reconciles(
    sandbox: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import new_shell

    shell = new_shell()
    losing = LosesAnswers()  # the create reaches the sandbox; its answer never arrives
    shell._gpu_magics._replace_toolkit(
        Toolkit(sandbox_settings(sandbox, reconcile_grace_seconds=0), transport=losing)
    )
    losing.lose_next("POST")
    shell.run_cell(
        "%gpu neolink-create-instance --display-name lost-1 --gpu-sku-id 88 --image " + IMAGE + " --yes"
    )
    out = capsys.readouterr()
    assert "OutcomeUnknown" in out.out + out.err and "Traceback" not in out.out + out.err
    assert [m for m, _ in losing.lost] == ["POST"]
    report = shell.run_line_magic("gpu", "reconcile")
    assert [i.outcome for i in report.result.items] == ["ok"]  # type: ignore[union-attr]
    assert len(creates_at(sandbox, "neolink")) == 1
    shell.extension_manager.unload_extension("ipython_ext")


MAGIC_CREATE = (
    "nebius-create-endpoint --name nb --model-name openai/gpt-oss-20b --flavor-name base "
    "--gpu-type gpu-h100-sxm"
)


@pytest.mark.parametrize(
    ("line", "error", "why"),
    [
        (MAGIC_CREATE + " --max-replica 2 --yes", UsageError, "unrecognized arguments: --max-replica"),
        (MAGIC_CREATE + " --max-replicas 0 --yes", errors.InvalidInput, "max_replicas"),
        (MAGIC_CREATE + " --max-replicas lots --yes", UsageError, "invalid int value: 'lots'"),
        (MAGIC_CREATE + " --name {nope} --yes", UsageError, "no variable named 'nope'"),
        ("rm nebius dep-1 --out 1x --yes", UsageError, "--out needs a variable name"),
        ("scale nebius --max-replicas 2 --yes", UsageError, "required"),
    ],
    ids=["misspelled-flag", "out-of-bounds", "not-a-number", "unknown-variable", "bad-out", "missing-id"],
)
async def test_the_magic_journals_each_invalid_change_once_and_sends_nothing(
    sandbox: SandboxServer, line: str, error: type[Exception], why: str
) -> None:
    from tests.conftest import fetch_log, new_shell

    shell = new_shell()
    shell._gpu_magics._replace_toolkit(Toolkit(sandbox_settings(sandbox)))
    with pytest.raises(error, match=re.escape(why)):
        shell.run_line_magic("gpu", line)
    history = shell.run_line_magic("gpu", "history")
    [row] = history.result.items  # type: ignore[union-attr]
    assert row.outcome == "refused" and row.error.startswith("invalid input: ") and why in row.error
    assert row.provider == "nebius"
    assert fetch_log(sandbox) == []  # not even a read to plan it
    shell.extension_manager.unload_extension("ipython_ext")


async def test_a_change_in_a_read_only_notebook_is_journaled_as_read_only(sandbox: SandboxServer) -> None:
    from tests.conftest import fetch_log, new_shell

    shell = new_shell()
    shell._gpu_magics._replace_toolkit(Toolkit(sandbox_settings(sandbox, read_only=True)))
    with pytest.raises(UsageError, match="this session is read-only"):
        shell.run_line_magic("gpu", "rm nebius dep-1 --yes")
    [row] = shell.run_line_magic("gpu", "history").result.items  # type: ignore[union-attr]
    assert (row.operation, row.outcome, row.provider) == ("delete_resource", "refused", "nebius")
    assert (row.error or "").startswith("read_only: ") and fetch_log(sandbox) == []
    shell.extension_manager.unload_extension("ipython_ext")


# ---- found in review: each of these once let a promise slip -------------------------------------------
async def test_reconciliation_never_adopts_a_same_named_resource_made_elsewhere(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()  # the provider's clock and ours: one, moved by hand
    monkeypatch.setattr(sandbox.sandbox, "wall", clock)
    tk = Toolkit(sandbox_settings(sandbox, reconcile_grace_seconds=0), now=clock)
    theirs = nebius_endpoint_made_elsewhere(sandbox, NEBIUS["name"])
    clock.advance(1)  # theirs was made a second before ours was sent (times have one-second steps)
    httpx.post(
        f"{sandbox.url}/_sandbox/faults",
        json={"provider": "nebius", "status": 503, "methods": ["POST"], "count": 1},
    )
    with pytest.raises(errors.OutcomeUnknown):
        await tk.call("nebius_create_endpoint", {**NEBIUS, "expires_in": "1s"}, confirmer=Approve())
    report = await tk.call("reconcile", {})
    [item] = report.items
    assert (
        item.outcome == "unknown" and theirs in item.note and "Left unknown rather than guessed" in item.note
    )
    assert all(e.resource_id != theirs for e in tk.journal.live())
    tk.close()


@pytest.mark.parametrize("answers", [("accept", "decline"), ("decline", "accept")])
async def test_a_legacy_yes_belongs_to_the_question_it_answered(
    sandbox: SandboxServer, answers: tuple[str, str]
) -> None:
    """Two identical calls at once: each answer applies to its own question, never the newest."""
    shown: list[str] = []
    ready = asyncio.Event()

    async def human(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        index = len(shown)
        shown.append(params.message)
        if len(shown) == 2:
            ready.set()
        await asyncio.wait_for(ready.wait(), 10)  # both questions exist before either is answered
        action = answers[index]
        return types.ElicitResult(action=action, content={"confirm": True} if action == "accept" else None)  # type: ignore[arg-type]

    server = build_server(sandbox_settings(sandbox))
    async with Client(server, elicitation_callback=human, mode="legacy") as client:
        results = await asyncio.gather(
            *(client.call_tool("nebius_create_endpoint", NEBIUS) for _ in range(2))
        )
    approvals = [m.rsplit("(approval ", 1)[1].split(")")[0] for m in shown]
    yes = approvals[answers.index("accept")]
    assert sorted(r.is_error for r in results) == [False, True]
    assert len(creates_at(sandbox, "nebius")) == 1
    used = server.toolkit.journal.approval(yes)
    assert used is not None and used.consumed_at is not None
    other = server.toolkit.journal.approval(approvals[answers.index("decline")])
    assert other is not None and other.refused is not None  # closed by its refusal, never sent


class BothAsked:
    """Answers each question only once both calls have been asked theirs, with `answers` in order."""

    def __init__(self, answers: tuple[str, ...] = ("accept", "accept")) -> None:
        self.answers, self.shown, self.ready = answers, [], asyncio.Event()

    async def __call__(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        index = len(self.shown)
        self.shown.append(params.message)
        if len(self.shown) >= 2:
            self.ready.set()
        await asyncio.wait_for(self.ready.wait(), 10)
        action = self.answers[index] if index < len(self.answers) else "decline"
        return types.ElicitResult(action=action, content={"confirm": True} if action == "accept" else None)  # type: ignore[arg-type]

    def approvals(self) -> list[str]:
        return [m.rsplit("(approval ", 1)[1].split(")")[0] for m in self.shown]


@pytest.mark.parametrize("mode", MODES)
async def test_two_identical_calls_at_once_are_two_questions_and_two_yeses_two_sends(
    sandbox: SandboxServer, mode: str
) -> None:
    """The same user makes the same create twice at once and says yes to both: each call had its own
    question and approval, and each yes sends its own request (never the other's, never a replay)."""
    human = BothAsked()
    server = build_server(sandbox_settings(sandbox))
    async with Client(server, elicitation_callback=human, mode=mode) as client:
        results = await asyncio.gather(
            *(client.call_tool("nebius_create_endpoint", NEBIUS) for _ in range(2))
        )
    made = [structured(r) for r in results]
    assert [m["outcome"] for m in made] == ["done", "done"] and len(human.shown) == 2
    assert made[0]["resource"]["resource_id"] != made[1]["resource"]["resource_id"]
    assert len(creates_at(sandbox, "nebius")) == 2
    approvals = human.approvals()
    assert len(set(approvals)) == 2
    for approval_id in approvals:
        approval = server.toolkit.journal.approval(approval_id)
        assert approval is not None and approval.consumed_at is not None
    assert [e.outcome for e in rows(server.toolkit)] == ["ok", "ok"]


@pytest.mark.parametrize("mode", MODES)
async def test_two_identical_yeses_at_once_each_meet_the_total_cap(sandbox: SandboxServer, mode: str) -> None:
    """A cap that holds one: both are asked (neither alone breaks it), both say yes, one is sent and
    the other is refused by the cap in its own transaction."""
    sandbox.sandbox.ready_after = 0
    human = BothAsked()
    server = build_server(sandbox_settings(sandbox, max_total_usd_per_hour=5))  # H100 at $3.50/hour
    async with Client(server, elicitation_callback=human, mode=mode) as client:
        results = await asyncio.gather(*(client.call_tool("neolink_create_instance", H100) for _ in range(2)))
    assert sorted(r.is_error for r in results) == [False, True] and len(human.shown) == 2
    [refused] = [error_text(r) for r in results if r.is_error]
    assert "max_total_usd_per_hour" in refused and "$7.00/hour in all" in refused
    assert len(creates_at(sandbox, "neolink")) == 1
    assert sorted(e.outcome for e in rows(server.toolkit)) == ["ok", "refused"]


# ---- issue 19, case 7: an approval belongs to its request ---------------------------------------------
async def test_a_yes_keeps_its_question_however_many_questions_are_open(sandbox: SandboxServer) -> None:
    """1,001 questions left open (the old table evicted past 1,000): the first one's yes still sends
    its own plan, once, and consumes its own approval."""
    server = build_server(sandbox_settings(sandbox))
    async with Client(server, elicitation_callback=Human()) as client:
        first = await client.session.call_tool("nebius_create_endpoint", NEBIUS, allow_input_required=True)
        assert isinstance(first, types.InputRequiredResult)
        for i in range(1000):
            other = {**NEBIUS, "name": f"open-{i}"}
            left = await client.session.call_tool("nebius_create_endpoint", other, allow_input_required=True)
            assert isinstance(left, types.InputRequiredResult)
        [key] = first.input_requests
        asked = first.input_requests[key].params.message  # type: ignore[union-attr]
        yes = {key: types.ElicitResult(action="accept", content={"confirm": True})}
        done = await client.session.call_tool(
            "nebius_create_endpoint", NEBIUS, input_responses=yes, request_state=first.request_state
        )
    assert done.structured_content["outcome"] == "done"  # type: ignore[index]
    assert len(creates_at(sandbox, "nebius")) == 1
    approval = server.toolkit.journal.approval(asked.rsplit("(approval ", 1)[1].split(")")[0])
    assert approval is not None and approval.consumed_at is not None


async def test_an_answer_carried_to_other_arguments_or_tampered_is_a_journaled_refusal_not_a_send(
    sandbox: SandboxServer,
) -> None:
    server = build_server(sandbox_settings(sandbox))
    async with Client(server, elicitation_callback=Human()) as client:
        first = await client.session.call_tool("nebius_create_endpoint", NEBIUS, allow_input_required=True)
        [key] = first.input_requests
        yes = {key: types.ElicitResult(action="accept", content={"confirm": True})}
        # The SDK binds a round's state to its request: carried to other arguments, it is refused.
        with pytest.raises(MCPError, match="Invalid or expired requestState"):
            await client.session.call_tool(
                "nebius_create_endpoint",
                {**NEBIUS, "gpu_count": 2},
                input_responses=yes,
                request_state=first.request_state,
                allow_input_required=True,
            )
        # A tampered state is refused the same way; each refusal is one journal row, on every transport.
        with pytest.raises(MCPError, match="Invalid or expired requestState"):
            await client.session.call_tool(
                "nebius_create_endpoint",
                NEBIUS,
                input_responses=yes,
                request_state="A" + (first.request_state or "")[1:],
                allow_input_required=True,
            )
        refused = structured(await client.call_tool("history", {}))["items"]
        assert [(e["outcome"], "requestState was refused" in (e["error"] or "")) for e in refused] == [
            ("refused", True),
            ("refused", True),
        ]
        # An answer without the round's state is no answer: the call is asked anew.
        bare = await client.session.call_tool(
            "nebius_create_endpoint",
            {**NEBIUS, "gpu_count": 2},
            input_responses=yes,
            allow_input_required=True,
        )
    assert isinstance(bare, types.InputRequiredResult)
    assert creates_at(sandbox, "nebius") == []


async def test_a_front_yes_without_its_question_is_refused_never_a_new_approval(
    tk: Toolkit, sandbox: SandboxServer
) -> None:
    from mcp.server.mcpserver import AcceptedElicitation

    from mcp_server import Confirmation, ElicitedConfirmer

    yes = ElicitedConfirmer(AcceptedElicitation(data=Confirmation(confirm=True)), True)
    with pytest.raises(errors.ConfirmationRefused, match="cannot be matched to the question it answered"):
        await tk.call("nebius_create_endpoint", NEBIUS, confirmer=yes, approval_id=None)
    theirs = await tk.question("nebius_create_endpoint", NEBIUS, asked_by="alice")
    assert theirs is not None
    with pytest.raises(errors.ConfirmationRefused, match="matches no current question"):
        await tk.call(
            "nebius_create_endpoint", NEBIUS, confirmer=yes, approval_id=theirs.approval.id, actor="bob"
        )
    assert mutating_requests(sandbox) == []
    assert [e.outcome for e in rows(tk)] == ["refused", "refused"]
    assert tk.journal.approval(theirs.approval.id).consumed_at is None  # type: ignore[union-attr]


async def test_a_lost_start_or_delete_is_counted_and_reconciled_against_its_resource(
    sandbox: SandboxServer,
) -> None:
    losing = LosesAnswers()  # the sandbox gets and carries out the call; its answer never arrives
    tk = Toolkit(
        sandbox_settings(
            sandbox,
            reconcile_grace_seconds=0,
            max_total_usd_per_hour=7,
            nebius_gpu_usd_per_hour={"gpu-h100-sxm": 6.0},
        ),
        transport=losing,
    )

    def sent() -> list[tuple[str, Any]]:
        return [(r["method"], r["body"]) for r in mutating_requests(sandbox)]

    def outcome(operation: str) -> list[str]:
        return [e.outcome for e in rows(tk) if e.operation == operation]

    made = await tk.call("nebius_create_endpoint", NEBIUS, confirmer=Approve())
    ref = {"provider": "nebius", "resource_id": made.resource.resource_id}
    await tk.call("stop_resource", ref, confirmer=Approve())
    assert [e.stopped for e in tk.journal.live()] == [True]
    losing.lose_next("PATCH")
    with pytest.raises(errors.OutcomeUnknown, match="Nothing will be resent"):
        await tk.call("start_resource", ref, confirmer=Approve())
    assert [m for m, _ in losing.lost] == ["PATCH"] and outcome("start_resource") == ["unknown"]
    assert sent()[-1] == ("PATCH", {"enabled": True})  # it reached the provider, once
    assert [e.stopped for e in tk.journal.live()] == [False]  # it may have started: it counts
    with pytest.raises(errors.PolicyRefused, match="max_total_usd_per_hour"):
        await tk.call("nebius_create_endpoint", {**NEBIUS, "name": "second"}, confirmer=Approve())
    losing.lose_next("DELETE")
    with pytest.raises(errors.OutcomeUnknown, match="Nothing will be resent"):
        await tk.call("delete_resource", ref, confirmer=Approve())
    assert [m for m, _ in losing.lost] == ["PATCH", "DELETE"] and outcome("delete_resource") == ["unknown"]
    report = await tk.call("reconcile", {})
    assert {(i.operation, i.outcome) for i in report.items} >= {("delete_resource", "ok")}
    assert tk.journal.live() == []
    # What reached the sandbox: the create, the stop, the lost start and the lost delete, each once;
    # the refused create and the reconciliation sent nothing.
    assert [m for m, _ in sent()] == ["POST", "PATCH", "PATCH", "DELETE"]
    tk.close()


async def test_a_scale_down_is_never_refused_by_the_total_cap(sandbox: SandboxServer) -> None:
    tk = Toolkit(sandbox_settings(sandbox, nebius_gpu_usd_per_hour={"gpu-h100-sxm": 6.0}))
    big = await tk.call("nebius_create_endpoint", {**NEBIUS, "max_replicas": 3}, confirmer=Approve())
    tight = Toolkit(
        sandbox_settings(sandbox, max_total_usd_per_hour=10, nebius_gpu_usd_per_hour={"gpu-h100-sxm": 6.0})
    )
    ref = {"provider": "nebius", "resource_id": big.resource.resource_id}
    with pytest.raises(errors.PolicyRefused):
        await tight.call("update_resource", {**ref, "max_replicas": 4}, confirmer=Approve())
    down = await tight.call("update_resource", {**ref, "max_replicas": 2}, confirmer=Approve())
    assert down.outcome == "done"
    tk.close()
    tight.close()


async def test_a_password_passed_in_is_redacted_wherever_it_is_echoed() -> None:
    password = "docker-pw-Echo-2231"
    image = {
        "id": 9,
        "name": "p",
        "image_name": "me/p",
        "image_tag": "1",
        "image_label": "x",
        "image_type": 2,
        "onstart": f"login {password}",
    }
    tk = Toolkit(Settings(netmind_api_key=SecretStr("k-netmind-pw-test")))
    with respx.mock(base_url="https://api.netmind.ai") as api:
        api.post("/v1/rentgpu/images/").respond(200, json=image)
        args = {
            "name": "p",
            "image_name": "me/p",
            "image_tag": "1",
            "image_label": "x",
            "docker_username": "me",
            "docker_passwd": password,
            "onstart": f"login {password}",
        }
        made = await tk.call("netmind_create_image", args, confirmer=Approve())
        history = await tk.call("history", {})
    assert password not in made.model_dump_json() and password not in history.model_dump_json()
    assert password not in journal_text(tk.journal)
    tk.close()


def test_the_sandbox_keeps_a_journal_of_its_own(sandbox: SandboxServer) -> None:
    real, fake = Settings(), Settings().for_sandbox(sandbox.url)
    assert real.resolved_journal_path() != fake.resolved_journal_path()
    assert real.journal_target() != fake.journal_target() and fake.journal_url is None  # nor a team's


async def test_a_sandbox_never_writes_the_journal_gpu_tools_journal_path_names(
    sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GPU_TOOLS_JOURNAL_PATH moves the real journal; the sandbox's goes beside it, and a sandbox
    create (through %gpu, as `%gpu sandbox` sets it up) leaves the real file untouched."""
    from gpu_tools.settings import load_settings
    from tests.conftest import new_shell

    real = tmp_path / "team" / "journal.sqlite3"
    monkeypatch.setenv("GPU_TOOLS_JOURNAL_PATH", str(real))
    monkeypatch.delenv("GPU_TOOLS_JOURNAL_URL", raising=False)  # this test is about the file
    settings = load_settings().for_sandbox(sandbox.url)
    assert settings.resolved_journal_path() == tmp_path / "team" / "sandbox-journal.sqlite3"
    assert settings.for_sandbox(sandbox.url).resolved_journal_path() == settings.resolved_journal_path()
    shell = new_shell()
    shell._gpu_magics._replace_toolkit(Toolkit(settings))
    made = shell.run_line_magic("gpu", MAGIC_CREATE + " --yes")
    assert made.result.outcome == "done" and len(creates_at(sandbox, "nebius")) == 1  # type: ignore[union-attr]
    shell.extension_manager.unload_extension("ipython_ext")
    assert not real.exists()
    reader = Toolkit(settings)
    [row] = reader.journal.entries()[0]
    reader.close()
    assert row.operation == "nebius_create_endpoint" and row.sandbox


def test_a_bad_setting_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from gpu_tools.settings import load_settings

    monkeypatch.setenv("GPU_TOOLS_DEFAULT_EXPIRES_IN", "8 hours")
    with pytest.raises(
        errors.InvalidInput, match=r"bad setting: default_expires_in: '8 hours' must be a number"
    ) as bad:
        load_settings()
    assert "pydantic" not in str(bad.value)
