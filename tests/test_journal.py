"""The journal itself, on both backends: schema upgrades, keys and approvals the database keeps
single, and caps that hold for writers in several processes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from gpu_tools.journal import SCHEMA_VERSION, Journal, PostgresJournal, SqliteJournal
from gpu_tools.models import Plan

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
    assert journal.find_key("nebius", "nebius_create_endpoint", "k-old") is not None
    rows, total = journal.entries()
    assert total == 1 and (rows[0].target, rows[0].actor, rows[0].confirmed_by) == ("old", "someone", None)
    approval = journal.approval("a1")
    assert approval is not None and approval.asked_by is None and approval.consumed_at is None
    # What version 3 added works on the upgraded journal: the database keeps the old key single.
    with pytest.raises(journal._integrity_errors):
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
    with pytest.raises(JournalUnavailable, match=r"cannot reach the journal database postgresql://u:\*\*\*@"):
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
        row = journal.reserve(
            step, effect, idempotency_key=None, args_hash=None, approval_id=None, expires_at=None, kind=None
        ).row_id
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


def test_an_upgrade_to_version_4_keeps_what_the_history_says(target: str) -> None:
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
