"""The journal itself, on both backends: schema upgrades, keys and approvals the database keeps
single, and caps that hold for writers in several processes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from gpu_tools.journal import SCHEMA_VERSION, Journal, PostgresJournal, SqliteJournal
from gpu_tools.models import Plan
from gpu_tools.sandbox import SandboxServer
from gpu_tools.toolkit import Toolkit
from tests.conftest import HoldsAnswers, mutating_requests, sandbox_settings
from tests.mcp_helpers import Human, error_text, structured
from tests.pg import new_database

pytestmark = pytest.mark.usefixtures("journal_backend")


@pytest.fixture
def target(journal_backend: str, gpu_home: Path) -> str:
    if journal_backend == "postgresql":
        return os.environ["GPU_TOOLS_JOURNAL_URL"]
    gpu_home.mkdir(parents=True, exist_ok=True)
    return str(gpu_home / "journal.sqlite3")


def open_at(target: str, version: int = SCHEMA_VERSION) -> Journal:
    if target.startswith("postgresql://"):
        return PostgresJournal(target, schema_version=version)
    return SqliteJournal(Path(target), schema_version=version)


def plan(target: str = "t", usd: float = 1.0) -> Plan:
    return Plan(
        provider="nebius",
        operation="nebius_create_endpoint",
        action=f"Create {target}.",
        target=target,
        method="POST",
        path="/v0/dedicated_endpoints",
        reversible=True,
        reversibility="delete it",
        usd_per_hour=usd,
        sandbox=True,
    )


def test_the_backend_is_the_one_asked_for(journal_backend: str, target: str) -> None:
    journal = Journal.open(target)
    expected = PostgresJournal if journal_backend == "postgresql" else SqliteJournal
    assert type(journal) is expected and journal.schema_version() == SCHEMA_VERSION
    journal.close()


def test_a_journal_written_by_the_previous_version_is_upgraded_in_place(target: str) -> None:
    old = open_at(target, version=2)
    assert old.schema_version() == 2
    with old._tx() as db:
        db.execute(
            "INSERT INTO journal (at, provider, operation, effect, target, method, path, usd_per_hour, outcome,"
            " resource_id, idempotency_key, sandbox, kind, actor) VALUES"
            " ('2026-11-01T10:00:00+00:00', 'nebius', 'nebius_create_endpoint', 'create', 'old', 'POST',"
            " '/v0/dedicated_endpoints', 2.5, 'ok', 'dep-old', 'k-old', 0, 'endpoint', 'someone')"
        )
        db.execute(
            "INSERT INTO approvals (id, fingerprint, digest, message, created_at) VALUES"
            " ('a1', 'fp', 'd', 'm', '2026-11-01T10:00:00+00:00')"
        )
        columns = old._columns(db, "journal")
    assert "confirmed_by" not in columns
    old.close()

    journal = Journal.open(target)
    assert journal.schema_version() == SCHEMA_VERSION
    [entry] = journal.live()
    assert (entry.resource_id, entry.usd_per_hour, entry.outcome) == ("dep-old", 2.5, "ok")
    assert journal.find_key("nebius", "nebius_create_endpoint", "k-old", user="someone") is not None
    rows, total = journal.entries()
    assert total == 1 and (rows[0].target, rows[0].actor, rows[0].confirmed_by) == ("old", "someone", None)
    approval = journal.approval("a1")
    assert approval is not None and approval.asked_by is None and approval.consumed_at is None
    # An approval from before version 8 awaited nothing: it is never settled as unanswered.
    assert approval.awaiting is None and journal.settle_unanswered() == 0 and journal.entries()[1] == 1
    # What versions 3 and 4 added works on the upgraded journal: the database keeps the old key single
    # for its user, and another user's same key is theirs.
    with pytest.raises(journal._integrity_errors):
        journal.record(plan("again"), "create", "unknown", idempotency_key="k-old", actor="someone")
    journal.record(plan("again"), "create", "unknown", idempotency_key="k-old")
    journal.close()
    assert Journal.open(target).schema_version() == SCHEMA_VERSION  # a second open changes nothing


def test_the_database_keeps_a_live_idempotency_key_single(target: str) -> None:
    journal = Journal.open(target)
    journal.record(plan(), "create", "unknown", idempotency_key="k")
    with pytest.raises(journal._integrity_errors):
        journal.record(plan(), "create", "ok", idempotency_key="k")
    journal.record(plan(), "create", "failed", idempotency_key="k")  # failed and refused rows may repeat
    journal.record(plan(), "create", "refused", idempotency_key="k")
    other = plan().model_copy(update={"operation": "nebius_update_endpoint"})
    journal.record(other, "update", "unknown", idempotency_key="k")  # keys are scoped to the operation
    assert journal.entries()[1] == 4
    journal.close()


def test_an_approval_is_consumed_once_by_two_connections(target: str) -> None:
    one, two = Journal.open(target), Journal.open(target)
    approval = one.new_approval("fp", "digest", "Create t?", asked_by="alice")
    kw = {"idempotency_key": None, "args_hash": None, "expires_at": None, "kind": "endpoint"}
    first = one.reserve(plan(), "create", approval_id=approval.id, confirmed_by="alice", **kw)
    second = two.reserve(plan(), "create", approval_id=approval.id, confirmed_by="bob", **kw)
    assert first.row_id is not None and second.row_id is None
    assert second.used is not None and second.used.journal_id == first.row_id
    rows = two.entries()[0]
    assert len(rows) == 1 and rows[0].confirmed_by == "alice"
    assert two.approval(approval.id).asked_by == "alice"  # type: ignore[union-attr]
    one.close()
    two.close()


def test_the_same_delete_of_a_resource_is_reserved_once_until_its_outcome_is_known(target: str) -> None:
    one, two = Journal.open(target), Journal.open(target)
    delete = plan("dep-1").model_copy(update={"operation": "delete_resource", "usd_per_hour": None})
    kw = {"idempotency_key": None, "args_hash": None, "expires_at": None, "kind": None}
    first = one.reserve(delete, "destroy", approval_id=None, actor="gpu-guard", **kw)
    assert first.row_id is not None and two.under_way(delete) is not None
    approval = two.new_approval("fp", "digest", "Delete dep-1?", asked_by="alice")
    second = two.reserve(delete, "destroy", approval_id=approval.id, actor="alice", **kw)
    assert second.row_id is None and second.busy is not None
    assert "by gpu-guard at" in second.busy and f"(journal #{first.row_id})" in second.busy
    closed = two.approval(approval.id)
    assert closed is not None and closed.consumed_at is not None  # answered: it can send nothing later
    rows = two.entries()[0]
    assert [(r.actor, r.outcome) for r in rows] == [("alice", "refused"), ("gpu-guard", "unknown")]
    other = delete.model_copy(update={"target": "dep-2"})  # another resource, another change: free
    assert two.under_way(other) is None
    assert two.under_way(delete.model_copy(update={"operation": "stop_resource"})) is None
    one.finish(first.row_id, "ok")
    third = two.reserve(delete, "destroy", approval_id=None, actor="alice", **kw)
    assert third.row_id is not None  # the first one's outcome is known: a later delete may be sent
    one.close()
    two.close()


WORKER = """
import sys, time
from gpu_tools.journal import Journal
from tests.test_journal import plan

journal = Journal.open(sys.argv[1])
worker = sys.argv[2]

def cap(view):
    live = sum(e.usd_per_hour or 0 for e in view.live())
    time.sleep(0.02)  # a slow check: writers that were not serialized would all pass it together
    return "cap: over 3 dollars" if live + 1.0 > 3.0 else None

for i in range(5):
    journal.reserve(plan(f"{worker}-{i}"), "create", idempotency_key=None, args_hash=None, approval_id=None,
                    expires_at=None, kind="endpoint", cap=cap, actor=worker)
journal.close()
"""


def test_a_cap_holds_for_writers_in_several_processes(target: str) -> None:
    Journal.open(target).close()  # the schema exists before the writers race
    root = Path(__file__).resolve().parent.parent
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, target, f"w{n}"], cwd=root, env=dict(os.environ))
        for n in range(4)
    ]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0, 0]
    journal = Journal.open(target)
    rows, total = journal.entries(limit=100)
    assert total == 20
    assert sorted(r.outcome for r in rows) == ["refused"] * 17 + ["unknown"] * 3
    assert all(r.error == "policy cap: over 3 dollars" for r in rows if r.outcome == "refused")
    assert len(journal.live()) == 3
    journal.close()


def test_a_url_of_another_database_is_refused_clearly() -> None:
    from gpu_tools.journal import JournalUnavailable

    with pytest.raises(JournalUnavailable, match="postgresql://"):
        Journal.open("mysql://user:pw@host/db")
    with pytest.raises(
        JournalUnavailable,
        match=r"cannot reach the journal database postgresql://u:\*\*\*@",
    ):
        Journal.open("postgresql://u:secret-pw@127.0.0.1:1/db")


def test_sqlite_journals_stay_plain_files(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "j.sqlite3")
    journal.close()
    with sqlite3.connect(tmp_path / "j.sqlite3") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def _history(journal: Journal, seed: int, resources: int = 30) -> None:
    """Creates (ok, unknown, failed), updates with and without a cost, stops, starts and deletes
    of a few resources, written through the journal's own methods, in a random order."""
    import random

    rng = random.Random(seed)
    made: list[str] = []
    for n in range(resources * 4):
        roll = rng.random()
        if roll < 0.3 or not made:
            row = journal.record(plan(f"r{n}", usd=rng.choice([1.0, 2.5, 4.0])), "create", "unknown")
            outcome = rng.choice(["ok", "ok", "ok", "unknown", "failed"])
            if outcome != "unknown":
                rid = f"dep-{n}" if outcome == "ok" else None
                journal.finish(row, outcome, resource_id=rid, kind="endpoint")
                if rid:
                    made.append(rid)
            continue
        rid = rng.choice(made)
        op, effect = rng.choice(
            [
                ("stop_resource", "update"),
                ("start_resource", "update"),
                ("scale", "update"),
                ("delete", "destroy"),
            ]
        )
        step = plan(rid, usd=rng.choice([0.5, 3.0])).model_copy(update={"operation": op})
        if op in ("stop_resource", "start_resource", "delete"):
            step = step.model_copy(update={"usd_per_hour": None})
        reservation = journal.reserve(
            step, effect, idempotency_key=None, args_hash=None, approval_id=None, expires_at=None, kind=None
        )
        if reservation.busy is not None:  # the same stop or start is still unknown: refused, not sent
            assert reservation.row_id is None and op in ("stop_resource", "start_resource")
            continue
        row = reservation.row_id
        assert row is not None
        journal.finish(row, rng.choice(["ok", "ok", "unknown", "failed"]))


def test_what_is_kept_as_rows_are_written_is_what_the_whole_history_says(target: str) -> None:
    """The live set and the spend kept per resource and per day answer exactly what replaying the
    whole journal answers, for windows that start and end in the middle of days."""
    from datetime import UTC, datetime, timedelta

    clock = [datetime(2026, 11, 1, 22, 0, tzinfo=UTC)]

    def now() -> datetime:
        clock[0] += timedelta(minutes=37)
        return clock[0]

    journal = Journal.open(target, now=now)
    _history(journal, seed=7)
    end = clock[0] + timedelta(hours=5)
    with journal._read() as db:
        replayed_live = journal._kept.live(db, kept=False)
        for hours in (1, 7, 24, 30, 24 * 4, 24 * 30):
            since = end - timedelta(hours=hours)
            kept = journal._kept.spent(db, since, end)
            assert kept == pytest.approx(journal._kept.spent(db, since, end, kept=False), abs=1e-9), hours
            assert kept > 0
    assert journal.live() == replayed_live and journal.live()
    journal.close()


def test_an_upgrade_to_version_5_keeps_what_the_history_says(target: str) -> None:
    """A version-3 journal with history is upgraded in place: what is live and what was spent read
    the same from the kept tables as they did from the whole history."""
    from datetime import UTC, datetime, timedelta

    old = open_at(target, version=3)
    _history(old, seed=3)
    end = datetime.now(UTC) + timedelta(hours=1)
    before = (old.live(), old.spent(end - timedelta(hours=2), end))
    old.close()

    journal = Journal.open(target)
    assert journal.schema_version() == SCHEMA_VERSION
    after = (journal.live(), journal.spent(end - timedelta(hours=2), end))
    assert after[0] == before[0] and after[1] == pytest.approx(before[1], abs=1e-9) and after[1] > 0
    journal.close()


def test_a_journal_a_development_build_numbered_4_upgrades_like_version_3(target: str) -> None:
    """Development builds wrote version 4 with only the per-user key index: opening one adds the kept
    tables, and keys stay per user."""
    old = open_at(target, version=3)
    old.reserve(
        plan(),
        "create",
        idempotency_key="k",
        args_hash="a",
        approval_id=None,
        expires_at=None,
        kind="endpoint",
        actor="alice",
    )
    with old._tx() as db:
        db.execute("DROP INDEX IF EXISTS journal_key_unique")
        db.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS journal_key_user_unique ON journal "
            "(provider, operation, idempotency_key, COALESCE(actor, '')) "
            "WHERE idempotency_key IS NOT NULL AND outcome IN ('ok', 'unknown')"
        )
        old._set_version(db, 4)
    old.close()

    journal = Journal.open(target)
    assert journal.schema_version() == SCHEMA_VERSION
    assert len(journal.live()) == 1  # read from the kept live set
    assert journal.find_key("nebius", "nebius_create_endpoint", "k", user="alice") is not None
    assert journal.find_key("nebius", "nebius_create_endpoint", "k", user="bob") is None
    journal.close()


# ---- the journal never holds up the event loop; outages said plainly --------------------------------
CREATE = {
    "name": "demo",
    "model_name": "openai/gpt-oss-20b",
    "flavor_name": "base",
    "gpu_type": "gpu-h100-sxm",
    "gpu_count": 1,
    "min_replicas": 1,
    "max_replicas": 2,
}


def _hold_the_reserve_lock(journal: Journal) -> Callable[[], None]:
    """From another connection, take what a create's reserve waits for (PostgreSQL: the advisory
    lock every server takes; SQLite: the file's write lock). Returns the release."""
    if isinstance(journal, PostgresJournal):
        import psycopg

        conn = psycopg.connect(journal.url)  # a transaction is open until rollback
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (PostgresJournal.LOCK,))
    else:
        conn = sqlite3.connect(str(journal.path), isolation_level=None, check_same_thread=False)
        conn.execute("BEGIN IMMEDIATE")
    released = threading.Event()

    def release() -> None:
        if not released.is_set():
            released.set()
            conn.rollback()
            conn.close()

    threading.Timer(30, release).start()  # never left held, whatever the test does
    return release


@pytest.mark.anyio
async def test_a_create_waiting_for_a_lock_holds_up_no_read(sandbox: SandboxServer) -> None:
    """While another connection holds the lock a create's reservation needs, the create waits on a
    journal worker thread; list_providers and list_resources (mcp.Client, in process) answer at once,
    and the create goes through when the lock is let go."""
    import anyio
    from mcp import Client

    from mcp_server import build_server

    server = build_server(sandbox_settings(sandbox))
    held: list[Callable[[], None]] = []

    class LockingHuman(Human):
        """Says yes, and at that moment another connection takes the lock the create needs next."""

        async def __call__(self, context: Any, params: Any) -> Any:
            held.append(_hold_the_reserve_lock(server.toolkit.journal))  # type: ignore[attr-defined]
            return await super().__call__(context, params)

    journal = server.toolkit.journal  # type: ignore[attr-defined]
    reserving = threading.Event()
    reserve = journal.reserve

    def reserve_and_say_so(*args: Any, **kw: Any) -> Any:
        reserving.set()  # on the journal's worker thread, just before the wait for the lock
        return reserve(*args, **kw)

    journal.reserve = reserve_and_say_so
    human = LockingHuman("accept", True)
    async with Client(server, elicitation_callback=human) as client:
        await client.call_tool("list_resources", {})  # warm: connections, the catalogue
        results: list[Any] = []
        async with anyio.create_task_group() as tg:

            async def create() -> None:
                results.append(await client.call_tool("nebius_create_endpoint", CREATE))

            tg.start_soon(create)
            with anyio.fail_after(20):
                while not reserving.is_set():  # asked, answered, and in its reservation: it waits
                    await anyio.sleep(0.01)
            # A read held up by the lock would wait until it is let go: 30 s (the holder's timer, and
            # SQLite's busy timeout). The bounds are far below that, and far above a busy machine's time.
            for tool in ("list_providers", "list_resources"):
                t0 = time.perf_counter()
                structured(await client.call_tool(tool, {}))
                took = time.perf_counter() - t0
                assert took < 10.0, (tool, took)
            t0 = time.perf_counter()  # readers at once: each journal worker thread answers
            async with anyio.create_task_group() as readers:
                for _ in range(8):
                    readers.start_soon(client.call_tool, "list_resources", {})
            assert time.perf_counter() - t0 < 15.0
            assert results == [] and mutating_requests(sandbox) == []  # still waiting, nothing sent
            held[0]()
        created = structured(results[0])
        spend = structured(await client.call_tool("spend", {}))
    assert created["outcome"] == "done" and len(mutating_requests(sandbox)) == 1
    rid = created["resource"]["resource_id"]
    [line] = [i for i in spend["items"] if i["resource_id"] == rid]
    assert line["tracked"] is True and line["status"]


@pytest.mark.anyio
@pytest.mark.parametrize("journal_backend", ["postgresql"], indirect=True)  # a database server's outage
async def test_a_database_outage_is_said_plainly_and_the_first_call_after_it_works(
    sandbox: SandboxServer,
) -> None:
    """PostgreSQL stops under a running server: a create says the journal is unreachable and that
    nothing was sent (and nothing is); a create whose request the provider already had says the
    resource may exist and is journaled as unknown; the first call after the restart works."""
    from mcp import Client

    from mcp_server import build_server
    from tests.pg import postgres_server

    with postgres_server(max_connections=50) as pg:
        url = new_database(pg.url, "outage")
        settings = sandbox_settings(sandbox).model_copy(update={"journal_url": SecretStr(url)})
        held = HoldsAnswers()
        server = build_server(toolkit=Toolkit(settings, transport=held))
        async with Client(server, elicitation_callback=Human("accept", True)) as client:
            structured(await client.call_tool("list_resources", {}))
            pg.stop()
            refused = error_text(await client.call_tool("nebius_create_endpoint", {**CREATE, "name": "a"}))
            assert "the journal database is unreachable" in refused and "nothing was sent" in refused
            assert "AdminShutdown" not in refused and mutating_requests(sandbox) == []
            pg.start()
            first = structured(await client.call_tool("nebius_create_endpoint", {**CREATE, "name": "b"}))
            assert first["outcome"] == "done" and len(mutating_requests(sandbox)) == 1

            # The database goes away while the provider has the request (its answer is held until
            # then): the row stays unknown.
            import anyio

            held.hold_next("POST")
            results: list[Any] = []
            async with anyio.create_task_group() as tg:

                async def create() -> None:
                    results.append(await client.call_tool("nebius_create_endpoint", {**CREATE, "name": "c"}))

                tg.start_soon(create)
                with anyio.fail_after(20):
                    await held.reached.wait()
                assert len(mutating_requests(sandbox)) == 2
                pg.stop()
                held.release()
            said = error_text(results[0])
            assert (
                "the provider received the request: the resource may exist; it is journaled as unknown"
                in said
            )
            assert "reconciled when the database is back" in said
            pg.start()
            rows, _ = server.toolkit.journal.entries()  # type: ignore[attr-defined]
            assert [r.outcome for r in rows][:1] == ["unknown"]
        server.toolkit.close()  # type: ignore[attr-defined]
