"""gpu-guard: expiries and budgets that hold when nobody is watching, against the sandbox."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client

from gpu_tools import errors
from gpu_tools.gate import Approve
from gpu_tools.guard import LEASE_SECONDS, Guard
from gpu_tools.journal import Journal
from gpu_tools.models import Plan
from gpu_tools.sandbox import SandboxServer
from gpu_tools.settings import Settings
from gpu_tools.toolkit import Toolkit
from mcp_server import build_server
from tests.conftest import LosesAnswers, mutating_requests, nebius_endpoint_made_elsewhere, sandbox_settings
from tests.mcp_helpers import Human, error_text, structured

# The journal's behaviour, on both backends.
pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("journal_backend")]

NEBIUS = {"name": "nb", "model_name": "openai/gpt-oss-20b", "flavor_name": "base", "gpu_type": "gpu-h100-sxm"}
SIX_DOLLARS = {"nebius_gpu_usd_per_hour": {"gpu-h100-sxm": 6.0}}


class Recorder:
    def __init__(self) -> None:
        self.asked: list[Plan] = []

    async def confirm(self, plan: Plan) -> bool:
        self.asked.append(plan)
        return True


class Clock:
    """The guard's clock in these tests: it stands still until the test moves it."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


def later(hours: float = 2) -> Clock:
    """A clock `hours` ahead of now: expiries of an hour have passed."""
    return Clock(datetime.now(UTC) + timedelta(hours=hours))


def guard_env(sandbox: SandboxServer, home: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "GPU_TOOLS_HOME": str(home),
        "NEBIUS_API_KEY": "sandbox-key",
        "NEBIUS_BASE_URL": f"{sandbox.url}/nebius",
        "NEOLINK_API_TOKEN": "sandbox-key",
        "NEOLINK_NAMESPACE": "sandbox-user",
        "NEOLINK_BASE_URL": f"{sandbox.url}/neolink/mdc/api/v1",
        **{k: v for k, v in os.environ.items() if k == "GPU_TOOLS_JOURNAL_URL"},
        **extra,
    }


def sandbox_endpoints(sandbox: SandboxServer) -> list[dict[str, Any]]:
    r = httpx.get(
        f"{sandbox.url}/nebius/v0/dedicated_endpoints", headers={"Authorization": "Bearer sandbox-key"}
    )
    body = r.json()
    return body.get("endpoints", body) if isinstance(body, dict) else body


def expire_all(journal: Journal) -> None:
    """Time passes for a guard in another process: every expiry in the journal moves into the past."""
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat(timespec="seconds")
    with journal._tx() as db:
        db.execute("UPDATE journal SET expires_at=? WHERE expires_at IS NOT NULL", (past,))
        journal.rebuild_kept(db)  # the live set keeps each create's expiry


def backdate(tk: Toolkit, hours: float) -> None:
    """Time passes: every journal row moves `hours` into the past."""
    with tk.journal._tx() as db:
        for row_id, at in db.execute("SELECT id, at FROM journal").fetchall():
            earlier = datetime.fromisoformat(at) - timedelta(hours=hours)
            db.execute("UPDATE journal SET at=? WHERE id=?", (earlier.isoformat(timespec="seconds"), row_id))
        tk.journal.rebuild_kept(db)


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


# ---- acceptance 1: an expiry carried out with nobody connected -----------------------------------------
async def test_an_expired_endpoint_is_deleted_by_gpu_guard_once_with_no_client(
    sandbox: SandboxServer, gpu_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server and the guard share the journal of these settings: a standalone sandbox, configured
    # like a real provider (gpu-mcp --sandbox keeps a journal of its own, and dies with its sandbox).
    env = guard_env(sandbox, gpu_home)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    server = build_server(Settings())
    async with Client(server, elicitation_callback=Human()) as client:
        created = structured(await client.call_tool("nebius_create_endpoint", {**NEBIUS, "expires_in": "1h"}))
    expire_all(server.toolkit.journal)
    server.toolkit.close()
    rid = created["resource"]["resource_id"]
    assert "then gpu-guard or reap_expired deletes it" in Plan.model_validate(created["plan"]).message()
    assert [e["id"] for e in sandbox_endpoints(sandbox)] == [rid]

    run = subprocess.run(
        [sys.executable, "-m", "gpu_tools.guard", "--once"],
        env=guard_env(sandbox, gpu_home),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    [said] = [line for line in run.stderr.splitlines() if "the journal" in line]
    assert said.startswith("gpu-guard: one pass over the journal") and " every " not in said
    assert f"expired: delete nebius {rid}" in run.stdout and "1 action(s)" in run.stdout
    assert sandbox_endpoints(sandbox) == []
    tk = Toolkit(Settings())
    history = await tk.call("history", {})
    assert (history.items[0].operation, history.items[0].actor, history.items[0].outcome) == (
        "delete_resource",
        "gpu-guard",
        "ok",
    )
    tk.close()


async def test_expires_action_stop_stops_once_and_keeps_the_resource(
    tk: Toolkit, sandbox: SandboxServer
) -> None:
    made = await tk.call(
        "nebius_create_endpoint",
        {**NEBIUS, "expires_in": "1h", "expires_action": "stop"},
        confirmer=Approve(),
    )
    assert "then gpu-guard or reap_expired stops it" in made.plan.message()
    lines: list[str] = []
    guard = Guard(tk, lines.append, now=later())
    await guard.run_once()
    await guard.run_once()  # already stopped: nothing more
    assert [r["method"] for r in mutating_requests(sandbox)] == ["POST", "PATCH"]
    assert [e["id"] for e in sandbox_endpoints(sandbox)] == [made.resource.resource_id]
    assert len(lines) == 1 and "expired: stop" in lines[0]


# ---- acceptance 2: budgets ----------------------------------------------------------------------------
async def test_a_daily_budget_refuses_before_asking_and_the_guard_stops_what_crosses_it(
    sandbox: SandboxServer, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook
    tk = Toolkit(sandbox_settings(sandbox, budget_usd_per_day=10, guard_webhook_url=url, **SIX_DOLLARS))
    first = await tk.call("nebius_create_endpoint", {**NEBIUS, "expires_in": "1h"}, confirmer=Approve())
    human = Recorder()
    with pytest.raises(
        errors.PolicyRefused, match=r"budget_usd_per_day: .* over the budget of \$10"
    ) as refused:
        await tk.call(
            "nebius_create_endpoint", {**NEBIUS, "name": "nb2", "expires_in": "1h"}, confirmer=human
        )
    assert human.asked == [] and len(mutating_requests(sandbox)) == 1
    assert "$6.00 committed by live resources" in str(refused.value)

    backdate(tk, 2)  # two hours at $6/h: $12 spent against a $10 day
    lines: list[str] = []
    actions = await Guard(tk, lines.append).run_once()
    assert [(a["event"], a["action"], a["resource_id"]) for a in actions] == [
        ("budget", "stop", first.resource.resource_id)
    ]
    assert [r["method"] for r in mutating_requests(sandbox)] == ["POST", "PATCH"]
    assert [n["event"] for n in received] == ["budget"] and received[0]["source"] == "gpu-guard"
    rows, _ = tk.journal.entries()
    assert (rows[0].operation, rows[0].actor) == ("stop_resource", "gpu-guard")

    report = await tk.call("spend", {})
    [day] = report.budgets
    assert (
        day.name == "budget_usd_per_day" and day.spent_usd == pytest.approx(12, rel=0.05) and day.left_usd < 0
    )
    assert report.guard is not None and report.guard.running
    tk.close()


async def test_budget_action_warn_only_notifies(
    sandbox: SandboxServer, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook
    tk = Toolkit(
        sandbox_settings(
            sandbox, budget_usd_per_day=10, budget_action="warn", guard_webhook_url=url, **SIX_DOLLARS
        )
    )
    await tk.call("nebius_create_endpoint", {**NEBIUS, "expires_in": "1h"}, confirmer=Approve())
    backdate(tk, 2)
    actions = await Guard(tk, lambda _: None).run_once()
    assert [(a["event"], a["action"]) for a in actions] == [("budget", "warn")]
    assert len(mutating_requests(sandbox)) == 1 and [n["action"] for n in received] == ["warn"]
    tk.close()


# ---- the guard never touches what the journal did not create ------------------------------------------------
async def test_the_guard_never_touches_a_resource_the_journal_did_not_create(
    sandbox: SandboxServer, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook
    nebius_endpoint_made_elsewhere(sandbox, "elsewhere")
    tk = Toolkit(sandbox_settings(sandbox, budget_usd_total=0.01, guard_webhook_url=url, **SIX_DOLLARS))
    actions = await Guard(tk, lambda _: None).run_once()
    assert actions == [] and received == []
    assert [r["method"] for r in mutating_requests(sandbox)] == ["POST"]
    assert [e["name"] for e in sandbox_endpoints(sandbox)] == ["elsewhere"]
    tk.close()


async def test_the_guard_reconciles_an_unknown_row(sandbox: SandboxServer) -> None:
    losing = LosesAnswers()  # the create reaches the sandbox; its answer never arrives
    tk = Toolkit(sandbox_settings(sandbox, reconcile_grace_seconds=0), transport=losing)
    losing.lose_next("POST")
    with pytest.raises(errors.OutcomeUnknown):
        await tk.call("nebius_create_endpoint", NEBIUS, confirmer=Approve())
    assert [m for m, _ in losing.lost] == ["POST"] and [e.outcome for e in tk.journal.live()] == ["unknown"]
    lines: list[str] = []
    actions = await Guard(tk, lines.append).run_once()
    assert [(a["event"], a["action"]) for a in actions] == [("reconciled", "ok")]
    assert [e.outcome for e in tk.journal.live()] == ["ok"] and "reconciled" in lines[0]
    tk.close()


# ---- no immortal resources; what spend shows --------------------------------------------------------------
async def test_default_expiry_is_applied_and_shown_and_require_expiry_refuses(sandbox: SandboxServer) -> None:
    tk = Toolkit(sandbox_settings(sandbox, default_expires_in="3h"))
    plan = (await tk.call("nebius_create_endpoint", {**NEBIUS, "dry_run": True})).plan
    assert plan.expires_at and any("default_expires_in setting (3h)" in w for w in plan.warnings)
    assert "Expires:" in plan.message()
    tk.close()
    strict = Toolkit(sandbox_settings(sandbox, require_expiry=True))
    human = Recorder()
    with pytest.raises(errors.PolicyRefused, match="require_expiry"):
        await strict.call("nebius_create_endpoint", NEBIUS, confirmer=human)
    made = await strict.call("nebius_create_endpoint", {**NEBIUS, "expires_in": "1h"}, confirmer=human)
    assert made.outcome == "done" and len(human.asked) == 1
    strict.close()


async def test_spend_says_when_the_guard_is_not_running(tk: Toolkit) -> None:
    await tk.call("nebius_create_endpoint", {**NEBIUS, "expires_in": "2h"}, confirmer=Approve())
    never = await tk.call("spend", {})
    assert never.guard is not None and not never.guard.running and "never run" in never.guard.message
    assert [x.action for x in never.expiries] == ["delete"]
    await Guard(tk, lambda _: None).run_once()
    assert (await tk.call("spend", {})).guard.running  # type: ignore[union-attr]
    stale = (datetime.now(UTC) - timedelta(seconds=4 * tk.settings.guard_interval)).isoformat(
        timespec="seconds"
    )
    tk.journal.set_meta("guard_last_pass", stale)
    late = (await tk.call("spend", {})).guard
    assert late is not None and not late.running and "not running" in late.message


# ---- the long-running process ---------------------------------------------------------------------------
def test_gpu_guard_says_what_it_watches_and_stops_cleanly_on_sigterm(
    sandbox: SandboxServer, gpu_home: Path
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gpu_tools.guard", "--interval", "0.2"],
        env=guard_env(sandbox, gpu_home, GPU_TOOLS_BUDGET_USD_PER_DAY="25"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    journal = Journal.open(os.environ.get("GPU_TOOLS_JOURNAL_URL") or gpu_home / "journal.sqlite3")
    while time.monotonic() < deadline and journal.meta("guard_last_pass") is None:
        time.sleep(0.2)
    assert journal.meta("guard_last_pass") is not None, "the guard made no pass"
    journal.close()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "watching the journal" in err and " every 0.2 s;" in err and "budget_usd_per_day $25" in err
    assert "Ctrl-C or SIGTERM" in err and "gpu-guard: stopped." in err


# ---- a shared journal: one guard acts per pass ------------------------------------------------------------
async def test_two_guards_on_one_journal_never_act_twice(sandbox: SandboxServer) -> None:
    first, second = Toolkit(sandbox_settings(sandbox)), Toolkit(sandbox_settings(sandbox))
    created = await first.call("nebius_create_endpoint", {**NEBIUS, "expires_in": "1h"}, confirmer=Approve())
    clock = later()
    said: list[str] = []
    done = {first: asyncio.Event(), second: asyncio.Event()}
    acting: list[Toolkit] = []

    def hold_until_the_other_returned(tk: Toolkit, other: Toolkit) -> None:
        """Only a guard holding the lease gets to act: hold it there, inside its pass, until the other
        guard's pass has returned, so the two passes overlap for certain (not by timing)."""
        send = tk.call

        async def held(*args: Any, **kwargs: Any) -> Any:
            # A second guard acting while the first is held would mean both hold the lease: fail now
            # rather than wait for each other for ever.
            assert not acting, "both guards act in passes that overlap"
            acting.append(tk)
            await done[other].wait()
            return await send(*args, **kwargs)

        tk.call = held  # type: ignore[method-assign]

    async def pass_of(tk: Toolkit) -> list[dict[str, Any]]:
        try:
            return await Guard(tk, said.append, now=clock).run_once()
        finally:
            done[tk].set()

    hold_until_the_other_returned(first, second)
    hold_until_the_other_returned(second, first)
    results = await asyncio.gather(pass_of(first), pass_of(second))
    del first.call, second.call  # the toolkits' own call again
    assert sorted(len(r) for r in results) == [0, 1] and len(acting) == 1
    assert any("another gpu-guard" in line and "this pass is skipped" in line for line in said)
    deletes = [r for r in mutating_requests(sandbox) if r["method"] == "DELETE"]
    assert len(deletes) == 1 and created.resource.resource_id in deletes[0]["path"]
    # The lease is released after the pass: the next pass of either guard runs (and finds nothing to do).
    before = len(said)
    assert await Guard(second, said.append, now=clock).run_once() == []
    assert not any("skipped" in line for line in said[before:])
    first.close()
    second.close()


async def test_a_guard_whose_pass_outlasts_its_lease_acts_no_more_once_another_took_over(
    sandbox: SandboxServer,
) -> None:
    first, second = Toolkit(sandbox_settings(sandbox)), Toolkit(sandbox_settings(sandbox))
    made = [
        await first.call(
            "nebius_create_endpoint", {**NEBIUS, "name": n, "expires_in": "1h"}, confirmer=Approve()
        )
        for n in ("nb1", "nb2")
    ]
    clock = later()
    said: list[str] = []
    slow = Guard(first, said.append, now=clock)
    taken_over: list[dict[str, Any]] = []
    send = first.call

    async def slowed(*args: Any, **kwargs: Any) -> Any:
        result = await send(*args, **kwargs)
        if not taken_over:
            # This call took longer than the lease: meanwhile another guard found it run out and acted.
            clock.advance(LEASE_SECONDS + 1)
            taken_over.extend(await Guard(second, said.append, now=clock).run_once())
        return result

    first.call = slowed  # type: ignore[method-assign]
    acted = await slow.run_once()
    deletes = [r["path"] for r in mutating_requests(sandbox) if r["method"] == "DELETE"]
    assert len(acted) == 1 and len(taken_over) == 1  # each guard deleted one endpoint
    assert len(deletes) == 2 and all(any(m.resource.resource_id in p for p in deletes) for m in made)
    assert any("lost the journal's lease" in line and "acts no more" in line for line in said)
    assert first.journal.live() == []
    first.close()
    second.close()


async def test_a_lease_that_ran_out_is_not_renewed_even_when_nobody_took_it(tk: Toolkit) -> None:
    clock = later(0)
    journal = tk.journal
    assert journal.acquire_lease("l", "a", 60, clock())[0]
    assert journal.renew_lease("l", "a", 60, clock())
    clock.advance(61)
    assert not journal.renew_lease("l", "a", 60, clock())  # ran out: whatever happened since is unknown
    assert journal.acquire_lease("l", "b", 60, clock())[0]
    assert not journal.renew_lease("l", "a", 60, clock())


# ---- a person's delete and the guard's, racing on the same expired resource --------------------------
def hold_sends(tk: Toolkit) -> tuple[asyncio.Event, asyncio.Event]:
    """`tk`'s next sends wait, reserved (their intent row written) but not yet at the provider, until
    `release` is set: the race is made certain, not timed."""
    reserved, release = asyncio.Event(), asyncio.Event()
    request = tk.gate.sender._request

    async def held(plan: Plan, row_id: int, adapter: Any) -> Any:
        reserved.set()
        await release.wait()
        return await request(plan, row_id, adapter)

    tk.gate.sender._request = held  # type: ignore[method-assign]
    return reserved, release


def deletes_at(sandbox: SandboxServer) -> list[dict[str, Any]]:
    return [r for r in mutating_requests(sandbox) if r["method"] == "DELETE"]


async def test_the_guard_does_not_send_a_delete_a_person_already_sent(sandbox: SandboxServer) -> None:
    person, guard = Toolkit(sandbox_settings(sandbox)), Toolkit(sandbox_settings(sandbox))
    made = await person.call("nebius_create_endpoint", {**NEBIUS, "expires_in": "1h"}, confirmer=Approve())
    rid = made.resource.resource_id
    expire_all(person.journal)
    reserved, release = hold_sends(person)
    deleting = asyncio.create_task(
        person.call("delete_resource", {"provider": "nebius", "resource_id": rid}, confirmer=Approve())
    )
    await reserved.wait()
    said: list[str] = []
    [action] = await Guard(guard, said.append).run_once()
    release.set()
    deleted = await deleting
    assert deleted.outcome == "done" and len(deletes_at(sandbox)) == 1
    assert not action["ok"] and "skipped: delete_resource of " + rid in action["detail"]
    assert "was already sent at" in action["detail"] and "Nothing was sent" in action["detail"]
    history = (await person.call("history", {})).items
    assert [(e.operation, e.actor, e.outcome) for e in history[:2]] == [
        ("delete_resource", "gpu-guard", "refused"),  # the person's intent row came first
        ("delete_resource", None, "ok"),
    ]
    assert "was already sent at" in (history[0].error or "")
    person.close()
    guard.close()


@pytest.mark.parametrize("resources", [2, 1])
async def test_a_persons_reap_skips_what_the_guard_is_deleting(
    sandbox: SandboxServer, resources: int
) -> None:
    """The guard's delete of the first expired endpoint is reserved (not answered) when a person's reap
    runs: that step is skipped and the next one consumes the person's approval; when it was the only
    step, a refused row closes the approval. Either way the approval ends in exactly one row."""
    person, guard = Toolkit(sandbox_settings(sandbox)), Toolkit(sandbox_settings(sandbox))
    rids = [
        (
            await person.call(
                "nebius_create_endpoint",
                {**NEBIUS, "name": f"nb{i}", "expires_in": "1h"},
                confirmer=Approve(),
            )
        ).resource.resource_id
        for i in range(resources)
    ]
    expire_all(person.journal)
    reserved, release = hold_sends(guard)
    guarding = asyncio.create_task(Guard(guard, [].append).run_once())
    await reserved.wait()  # the guard's first delete is reserved, not yet sent
    reaped = await person.call("reap_expired", {}, confirmer=Approve())
    release.set()
    actions = await guarding
    [first, *rest] = reaped.detail["steps"]
    assert (
        first["outcome"] == "skipped"
        and "by gpu-guard" in first["error"]
        and "Nothing was sent" in first["error"]
    )
    assert [s["outcome"] for s in rest] == ["ok"] * (resources - 1)
    deletes = deletes_at(sandbox)
    assert len(deletes) == resources and {d["path"].rsplit("/", 1)[-1] for d in deletes} == set(rids)
    assert [a["ok"] for a in actions] == [True] * resources  # the guard's second: already gone
    with person.journal._read() as db:
        approval = db.execute(
            "SELECT * FROM approvals ORDER BY created_at DESC LIMIT 1"
        ).fetchone()  # the reap's
        assert approval["consumed_at"] is not None
        linked = db.execute("SELECT operation, outcome FROM journal WHERE approval_id=?", (approval["id"],))
        linked = [tuple(r) for r in linked.fetchall()]
    if resources == 2:  # the step that was sent consumed it: its row is the approval's one row
        assert linked == [("delete_resource", "ok")]
        assert approval["journal_id"] == rest[0]["journal_id"]
    else:  # nothing was sent: its refused row closes it
        assert linked == [("reap_expired", "refused")]
        assert (
            "every step was already under way" in (person.journal.row(approval["journal_id"]) or {})["error"]
        )
    person.close()
    guard.close()


class StartsTheGuard(Human):
    """Answers yes, but first, while the question is open, the guard's pass starts and gets as far as
    its own delete of the same resource (reserved, not yet answered)."""

    def __init__(self, guard: Toolkit) -> None:
        super().__init__()
        self.reserved, self.release = hold_sends(guard)
        self.guard = guard
        self.guarding: asyncio.Task[list[dict[str, Any]]] | None = None

    async def __call__(self, context: Any, params: Any) -> Any:
        self.guarding = asyncio.create_task(Guard(self.guard, [].append).run_once())
        await self.reserved.wait()
        return await super().__call__(context, params)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_over_mcp_a_delete_the_guard_started_while_asked_is_refused_and_not_sent(
    sandbox: SandboxServer, mode: str
) -> None:
    person, guard = Toolkit(sandbox_settings(sandbox)), Toolkit(sandbox_settings(sandbox))
    made = await person.call("nebius_create_endpoint", {**NEBIUS, "expires_in": "1h"}, confirmer=Approve())
    rid = made.resource.resource_id
    expire_all(person.journal)
    human = StartsTheGuard(guard)
    async with Client(build_server(toolkit=person), elicitation_callback=human, mode=mode) as client:
        result = await client.call_tool("delete_resource", {"provider": "nebius", "resource_id": rid})
        # Asked again now, nobody is asked: the guard's delete is still under way.
        again = await client.call_tool("delete_resource", {"provider": "nebius", "resource_id": rid})
    human.release.set()
    assert human.guarding is not None
    [action] = await human.guarding
    for text in (error_text(result), error_text(again)):
        assert (
            f"delete_resource of {rid} was already sent by gpu-guard at" in text
            and "Nothing was sent" in text
        )
    assert len(human.messages) == 1
    assert action["ok"] and len(deletes_at(sandbox)) == 1
    history = (await person.call("history", {})).items
    assert [(e.actor, e.outcome) for e in history[:3]] == [
        (None, "refused"),
        (None, "refused"),
        ("gpu-guard", "ok"),
    ]
    person.close()
    guard.close()
