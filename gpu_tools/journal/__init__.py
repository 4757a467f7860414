"""The journal: one row per mutation attempt, written before the request is sent.

The intent row is committed with outcome `unknown` before anything goes to the provider and is
updated to `ok`, `failed` or `refused` afterwards. A crash, a timeout or a lost answer in between
leaves `unknown`, which counts as live (at the plan's cost) for caps and spend until reconciliation
finds what the provider holds, so no billable resource is ever untracked. Bodies are stored masked.

Approvals live here too: a confirmation is a row in `approvals`, consumed in the same transaction
that checks the caps and writes the intent, so one approval sends at most one request, and creates
running at the same moment (in this process or another on the same file) can never together pass a
cap that one of them alone would have broken.

Two backends share every statement and rule here: SQLite (the embedded default, one file) and
PostgreSQL (`journal_url = "postgresql://..."`, psycopg 3) for a team whose servers share one journal.
Each writes through `_tx()`; `reserve` runs under a lock that serializes it with every other writer
of the same journal (SQLite's `BEGIN IMMEDIATE`; on PostgreSQL an advisory transaction lock taken by
every server on that database), and the database itself keeps idempotency keys unique and an
approval single-use.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from gpu_tools.errors import GpuToolsError, redact_value
from gpu_tools.journal.approvals import APPROVAL_TTL, Approval, Approvals
from gpu_tools.journal.decisions import _V6, _V6_COLUMNS, Decisions
from gpu_tools.journal.kept import Kept
from gpu_tools.journal.prices import Prices
from gpu_tools.journal.schema import (
    _BILLING,
    _SCHEMA,
    _V2,
    _V2_COLUMNS,
    _V3,
    _V3_COLUMNS,
    _V5,
    _V7,
    _V8,
    _V8_COLUMNS,
    SCHEMA_VERSION,
    statements,
)
from gpu_tools.models import BILLABLE_KINDS, JournalEntry, LiveEntry, Plan, resource_uri, utc_now

if TYPE_CHECKING:
    from gpu_tools.journal.aio import AsyncJournal
    from gpu_tools.journal.postgres import PostgresJournal
    from gpu_tools.journal.sqlite import SqliteJournal


class Db(Protocol):
    """A connection inside a transaction: `execute` takes `?` placeholders on both backends."""

    def execute(self, sql: str, params: Any = ()) -> Any: ...


class LiveView:
    """What a check inside `reserve`'s transaction may read."""

    def __init__(self, journal: Journal, db: Db) -> None:
        self._journal, self._db = journal, db

    def live(self) -> list[LiveEntry]:
        return self._journal._live(self._db)

    def spent(self, since: datetime, now: datetime) -> float:
        return self._journal._spent(self._db, since, now)


class JournalUnavailable(GpuToolsError):
    """The journal's database cannot be opened or reached; nothing was sent."""

    kind = "journal_unavailable"


def display_url(url: str) -> str:
    """A database URL as it may be shown: the password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


# Changes to one resource sent at most once at a time: while one's outcome is unknown (still running,
# or its answer lost), the same change to the same resource is refused (`Journal.reserve`).
ONCE_AT_A_TIME = ("delete_resource", "stop_resource", "start_resource")


@dataclass
class Reservation:
    """What `reserve` decided: a row to send under, or why not."""

    row_id: int | None = None  # the intent row (send now)
    refused: str | None = None  # a cap refused it (a refused row was written)
    used: Approval | None = None  # the approval was already consumed: a replay
    key_row: dict[str, Any] | None = None  # the idempotency key was already used
    busy: str | None = None  # the same change to this resource is under way (a refused row was written)


class _Conflict(Exception):
    """Another writer consumed the approval first (the database said so)."""


class Journal(Approvals, Decisions, Prices):
    """Everything the journal does, in SQL both backends speak. A backend supplies the connection,
    `_tx` (a write transaction; `serialize` makes it exclusive among every writer of the journal),
    `_read`, the schema version's storage and the few words its dialect spells differently."""

    DIALECT: dict[str, str] = {}
    location: str
    _integrity_errors: tuple[type[BaseException], ...] = ()

    now: Callable[[], datetime] = staticmethod(utc_now)  # type: ignore[assignment]
    _aio: AsyncJournal | None = None

    @property
    def aio(self) -> AsyncJournal:
        """This journal's calls as coroutines, run on its worker threads: what async code awaits."""
        if self._aio is None:
            from gpu_tools.journal.aio import AsyncJournal

            self._aio = AsyncJournal(self)
        return self._aio

    def _close_workers(self) -> None:
        if self._aio is not None:
            self._aio.close()
            self._aio = None

    def _stamp(self, precise: bool = False) -> str:
        """The clock's time as the journal stores it (whole seconds; approvals to the microsecond)."""
        return self.now().astimezone(UTC).isoformat(timespec="microseconds" if precise else "seconds")

    @staticmethod
    def open(target: str | Path, *, now: Callable[[], datetime] | None = None) -> Journal:
        """The journal at a PostgreSQL URL, or in the SQLite file at a path."""
        if isinstance(target, str) and target.startswith(("postgresql://", "postgres://")):
            from gpu_tools.journal.postgres import PostgresJournal

            return PostgresJournal(target, now=now)
        if isinstance(target, str) and "://" in target:
            raise JournalUnavailable(
                f"journal_url must be a postgresql:// URL (got {display_url(target).split('://')[0]}://...); "
                "leave it unset for the SQLite journal in the data directory, or set journal_path."
            )
        from gpu_tools.journal.sqlite import SqliteJournal

        return SqliteJournal(Path(target), now=now)

    # ---- backend hooks ------------------------------------------------------------------------
    @contextmanager
    def _tx(self, serialize: bool = False) -> Iterator[Db]:  # pragma: no cover - abstract
        raise NotImplementedError
        yield

    @contextmanager
    def _read(self) -> Iterator[Db]:  # pragma: no cover - abstract
        raise NotImplementedError
        yield

    def _version(self, db: Db) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _set_version(self, db: Db, version: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _columns(self, db: Db, table: str) -> set[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # ---- schema -----------------------------------------------------------------------------
    def _migrate(self, target: int = SCHEMA_VERSION) -> None:
        """Create or upgrade the schema to `target` in one transaction (older targets: for tests
        that write a journal as a previous version did)."""
        self._kept = Kept(self.DIALECT)
        with self._tx(serialize=True) as db:
            version = self._version(db)
            self._keeps = max(version, target) >= 5
            if version >= target:
                return
            self._upgrade(db, version, target)
            self._set_version(db, target)

    def _ddl(self, script: str) -> list[str]:
        return [statement.format(**self.DIALECT) for statement in statements(script)]

    def _add_columns(self, db: Db, table: str, columns: dict[str, str]) -> None:
        have = self._columns(db, table)
        for column, sql_type in columns.items():
            if column not in have:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")

    def _upgrade(self, db: Db, version: int, target: int) -> None:
        # Version 0 is a new journal or one the first release wrote (it never set a version).
        for statement in self._ddl(_SCHEMA):
            db.execute(statement)
        if version < 2 <= target:
            self._add_columns(db, "journal", _V2_COLUMNS)
            for statement in self._ddl(_V2):
                db.execute(statement)
        if version < 3 <= target:
            for table, columns in _V3_COLUMNS.items():
                self._add_columns(db, table, columns)
            for statement in self._ddl(_V3):
                db.execute(statement)
        if version < 5 <= target:
            for statement in self._ddl(_V5):
                db.execute(statement)
            self._kept.rebuild(db)
            db.execute("ANALYZE")  # the planner's statistics for the new indexes and tables
        if version < 6 <= target:
            for table, columns in _V6_COLUMNS.items():
                self._add_columns(db, table, columns)
            for statement in self._ddl(_V6):
                db.execute(statement)
        if version < 7 <= target:
            for statement in self._ddl(_V7):
                db.execute(statement)
        if version < 8 <= target:
            for table, columns in _V8_COLUMNS.items():
                self._add_columns(db, table, columns)
            for statement in self._ddl(_V8):
                db.execute(statement)

    def schema_version(self) -> int:
        with self._read() as db:
            return self._version(db)

    # ---- writing ----------------------------------------------------------------------------
    def _insert(
        self,
        db: Db,
        plan: Plan,
        effect: str,
        outcome: str,
        *,
        error: str | None = None,
        idempotency_key: str | None = None,
        args_hash: str | None = None,
        approval_id: str | None = None,
        expires_at: str | None = None,
        kind: str | None = None,
        result: Any = None,
        actor: str | None = None,
        resource_id: str | None = None,
        confirmed_by: str | None = None,
    ) -> int:
        cur = db.execute(
            "INSERT INTO journal (at, provider, operation, effect, target, method, path, body,"
            " usd_per_hour, outcome, error, idempotency_key, sandbox, expires_at, kind, args_hash, approval_id,"
            " result, actor, expires_action, resource_id, confirmed_by)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
            (
                self._stamp(),
                plan.provider,
                plan.operation,
                effect,
                plan.target,
                plan.method,
                plan.path,
                json.dumps(redact_value(plan.body)) if plan.body is not None else None,
                plan.usd_per_hour_max if plan.usd_per_hour_max is not None else plan.usd_per_hour,
                outcome,
                redact_value(error),
                idempotency_key,
                int(plan.sandbox),
                expires_at,
                kind,
                args_hash,
                approval_id,
                json.dumps(redact_value(result)) if result is not None else None,
                actor,
                plan.expires_action if expires_at else None,
                resource_id,
                confirmed_by,
            ),
        )
        row_id = int(cur.fetchone()[0])
        self._keep(db, plan.provider, effect, row_id, resource_id)
        return row_id

    def _keep(self, db: Db, provider: str, effect: str, row_id: int, *resource_ids: str | None) -> None:
        """The kept rows of the resource a written row is about, answered again (same transaction)."""
        if not self._keeps:
            return
        if effect == "create":
            self._kept.refresh_live(db, "c.id = ?", (row_id,))
        for rid in dict.fromkeys(r for r in resource_ids if r is not None):
            self._kept.refresh_live(db, "c.provider = ? AND c.resource_id = ?", (provider, rid))
        self._kept.refresh_billing(db, [(provider, rid, row_id) for rid in dict.fromkeys(resource_ids)])

    def rebuild_kept(self, db: Db) -> None:
        """Every kept row again from the whole journal, inside `db`'s transaction (for a test that
        rewrites the journal's history in SQL)."""
        if self._keeps:
            self._kept.rebuild(db)

    def record(
        self, plan: Plan, effect: str, outcome: str, *, closes: tuple[str, str] | None = None, **kw: Any
    ) -> int | None:
        """Write a row that needs no check: a refusal, or a step of an already approved plan.
        `closes`: (approval id, fingerprint) of the question this refusal answers, closed in the same
        transaction; when it was closed first (another process sent, or journaled the question's
        refusal), that row is the question's one row and nothing is written (None). Someone else's
        question, or none, is not closed: the refusal is journaled as it is."""
        with self._tx() as db:
            if closes is not None:
                approval_id, fp = closes
                if self._close(db, approval_id, fp, kw.get("error") or outcome):
                    row_id = self._insert(db, plan, effect, outcome, approval_id=approval_id, **kw)
                    db.execute("UPDATE approvals SET journal_id=? WHERE id=?", (row_id, approval_id))
                    return row_id
                if self._closed_before(db, approval_id, fp):
                    return None
            return self._insert(db, plan, effect, outcome, **kw)

    def reserve(
        self,
        plan: Plan,
        effect: str,
        *,
        idempotency_key: str | None,
        args_hash: str | None,
        approval_id: str | None,
        expires_at: str | None,
        kind: str | None,
        cap: Callable[[LiveView], str | None] | None = None,
        actor: str | None = None,
        confirmed_by: str | None = None,
        sending: Callable[[int], None] | None = None,
        step: bool = False,
    ) -> Reservation:
        """In one transaction, exclusive among every writer of this journal (every server of a team):
        the approval is unused, the key is free, the caps and budgets hold (`cap` reads what is live or
        in flight, and what was spent, inside the transaction), then the intent row. The database
        refuses a second use of a key or an approval even if that exclusion were ever broken.
        `sending` is told the intent row's id inside the transaction, before any other call can see
        the approval used (the sender marks it in flight there; a rolled-back id it must forget).
        `step`: one step of several; a step refused because the same change is under way leaves the
        approval for the next step (its row names no approval)."""
        try:
            with self._tx(serialize=True) as db:
                approval = None
                if approval_id is not None:
                    approval = self._approval(db, approval_id)
                    if approval is not None and approval.consumed_at is not None:
                        return Reservation(used=approval)
                if idempotency_key is not None:
                    row = self._key_row(db, plan.provider, plan.operation, idempotency_key, actor)
                    if row is not None:
                        return Reservation(key_row=row)
                who = {"actor": actor, "confirmed_by": confirmed_by}

                def refuse(error: str, keep: bool = False) -> None:
                    """The refused row, closing the approval (answered: refused, asked anew) unless `keep`."""
                    answered = None if keep else approval
                    if answered is not None and not self._close(db, answered.id, answered.fingerprint, error):
                        raise _Conflict  # closed meanwhile (settled by another process): its row stands
                    refused_row = self._insert(
                        db,
                        plan,
                        effect,
                        "refused",
                        error=error,
                        idempotency_key=idempotency_key,
                        args_hash=args_hash,
                        approval_id=None if keep else approval_id,
                        **who,
                    )
                    if answered is not None:
                        db.execute("UPDATE approvals SET journal_id=? WHERE id=?", (refused_row, answered.id))

                busy = self._under_way(db, plan) if effect != "create" else None
                if busy is not None:
                    refuse(busy, keep=step)
                    return Reservation(busy=busy)
                if cap is not None:
                    refusal = cap(LiveView(self, db))
                    if refusal is not None:
                        refuse(f"policy {refusal}")
                        return Reservation(refused=refusal)
                row_id = self._insert(
                    db,
                    plan,
                    effect,
                    "unknown",
                    idempotency_key=idempotency_key,
                    args_hash=args_hash,
                    approval_id=approval_id,
                    expires_at=expires_at,
                    kind=kind,
                    # A change to a resource names it from the start, so a lost answer's row is still
                    # about that resource when reconciliation resolves it.
                    resource_id=None if effect == "create" else plan.target,
                    # The plan, so a reconciled row can answer a replay of its key like a finished one.
                    result={"plan": plan.model_dump(mode="json", exclude={"sandbox"})},
                    **who,
                )
                if approval is not None:
                    cur = db.execute(
                        "UPDATE approvals SET consumed_at=?, journal_id=?, awaiting=NULL WHERE id=? AND consumed_at IS NULL",
                        (self._stamp(), row_id, approval_id),
                    )
                    if cur.rowcount != 1:
                        raise _Conflict
                if sending is not None:
                    sending(row_id)
                return Reservation(row_id=row_id)
        except (_Conflict, *self._integrity_errors):
            # Another writer used the approval or the key first: answer as a replay of theirs.
            with self._read() as db:
                used = self._approval(db, approval_id) if approval_id is not None else None
                if used is not None and used.consumed_at is not None:
                    return Reservation(used=used)
                if idempotency_key is not None:
                    row = self._key_row(db, plan.provider, plan.operation, idempotency_key, actor)
                    if row is not None:
                        return Reservation(key_row=row)
            raise

    def under_way(self, plan: Plan) -> str | None:
        """`_under_way`, read before anyone is asked (`reserve` decides again, in its transaction)."""
        if plan.operation not in ONCE_AT_A_TIME:
            return None
        with self._read() as db:
            return self._under_way(db, plan)

    def _under_way(self, db: Db, plan: Plan) -> str | None:
        """Why `plan` may not be sent now: the same stop, start or delete of this very resource was
        sent (by anyone: a person, another server, gpu-guard) and its outcome is not journaled yet.
        It is either still running or its answer was lost; a second request would send the change
        twice. Reconciliation settles it (reading the resource), after which a call may try again."""
        if plan.operation not in ONCE_AT_A_TIME or not plan.target:
            return None
        row = db.execute(
            "SELECT id, actor, at FROM journal WHERE provider=? AND resource_id=? AND operation=?"
            " AND outcome='unknown' ORDER BY id LIMIT 1",
            (plan.provider, plan.target, plan.operation),
        ).fetchone()
        if row is None:
            return None
        by = f" by {row['actor']}" if row["actor"] else ""
        return (
            f"{plan.operation} of {plan.target} was already sent{by} at {row['at']} (journal #{row['id']}), "
            "and how it ended is not known yet (it is under way, or its answer was lost): a second request "
            "would send the same change twice"
        )

    def finish(
        self,
        row_id: int,
        outcome: str,
        *,
        error: str | None = None,
        resource_id: str | None = None,
        result: Any = None,
        kind: str | None = None,
        note: str | None = None,
    ) -> None:
        with self._tx() as db:
            before = db.execute(
                "SELECT provider, effect, resource_id FROM journal WHERE id=?", (row_id,)
            ).fetchone()
            db.execute(
                "UPDATE journal SET outcome=?, error=?, resource_id=COALESCE(?, resource_id), result=COALESCE(?, result),"
                " kind=COALESCE(?, kind), note=COALESCE(?, note) WHERE id=?",
                (
                    outcome,
                    redact_value(error),
                    resource_id,
                    json.dumps(redact_value(result)) if result is not None else None,
                    kind,
                    note,
                    row_id,
                ),
            )
            if before is not None:
                self._keep(db, before[0], before[1], row_id, before[2], resource_id or before[2])

    # ---- small shared state (the guard's heartbeat, its lease) --------------------------------
    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, value),
            )

    def meta(self, key: str) -> str | None:
        with self._read() as db:
            row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def acquire_lease(
        self, name: str, holder: str, seconds: float, now: datetime | None = None
    ) -> tuple[bool, str, str]:
        """Take (or renew) the lease `name` for `holder` for `seconds`, unless another holder's lease
        is still running. Returns (taken, holder, until) of the lease as it now stands."""
        now = now or self.now()
        with self._tx(serialize=True) as db:
            row = db.execute("SELECT holder, until FROM leases WHERE name=?", (name,)).fetchone()
            if row is not None and row[0] != holder and datetime.fromisoformat(row[1]) > now:
                return False, row[0], row[1]
            until = (now + timedelta(seconds=seconds)).isoformat(timespec="seconds")
            db.execute(
                "INSERT INTO leases (name, holder, until) VALUES (?, ?, ?)"
                " ON CONFLICT(name) DO UPDATE SET holder=excluded.holder, until=excluded.until",
                (name, holder, until),
            )
            return True, holder, until

    def renew_lease(self, name: str, holder: str, seconds: float, now: datetime | None = None) -> bool:
        """Extend the lease `name` by `seconds` from `now` only while `holder` still holds it (its row,
        not yet run out): False once it ran out or another holder took it, whatever happened since."""
        now = now or self.now()
        with self._tx(serialize=True) as db:
            row = db.execute("SELECT holder, until FROM leases WHERE name=?", (name,)).fetchone()
            if row is None or row[0] != holder or datetime.fromisoformat(row[1]) <= now:
                return False
            until = (now + timedelta(seconds=seconds)).isoformat(timespec="seconds")
            db.execute("UPDATE leases SET until=? WHERE name=? AND holder=?", (until, name, holder))
            return True

    def release_lease(self, name: str, holder: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM leases WHERE name=? AND holder=?", (name, holder))

    def first_at(self) -> str | None:
        with self._read() as db:
            row = db.execute("SELECT MIN(at) FROM journal").fetchone()
        return row[0] if row else None

    # ---- what was spent -----------------------------------------------------------------------
    def _spent(self, db: Db, since: datetime, now: datetime) -> float:
        """USD this tool's resources cost between `since` and `now`, from the journal's own events:
        a create (ok, or unknown at its planned cost) starts billing, a stop pauses it, a start resumes
        it, an update with a cost changes the rate, a delete ends it (kept per day as rows are written)."""
        return self._kept.spent(db, since, now, self._keeps)

    def spent(self, since: datetime, now: datetime | None = None) -> float:
        with self._read() as db:
            return self._spent(db, since, now or self.now())

    def billing_rows(self) -> list[tuple[Any, ...]]:
        """The rows that start, change, pause or end billing, oldest first (as `_spent` reads them):
        (id, at, provider, operation, effect, resource_id, usd_per_hour, kind, outcome)."""
        with self._read() as db:
            return [tuple(row) for row in db.execute(_BILLING.format(FILTER="1=1")).fetchall()]

    def note(self, row_id: int, note: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE journal SET note=? WHERE id=?", (note, row_id))

    # ---- reading ----------------------------------------------------------------------------
    def _live(self, db: Db) -> list[LiveEntry]:
        return self._kept.live(db, self._keeps)

    def live(self) -> list[LiveEntry]:
        """Billable resources this tool created (or may have: outcome unknown) and has not deleted,
        with their latest cost figure. Answered in SQL, so it costs what the answer costs."""
        with self._read() as db:
            return self._live(db)

    def created_among(self, pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these (provider, resource_id) this tool created (each looked up by its index)."""
        with self._read() as db:
            return {
                (p, r)
                for p, r in pairs
                if db.execute(
                    "SELECT 1 FROM journal WHERE provider=? AND resource_id=? AND effect='create' LIMIT 1",
                    (p, r),
                ).fetchone()
            }

    def created_row(self, provider: str, resource_id: str) -> dict[str, Any] | None:
        """The ok create that made this resource, with its (masked) request body decoded."""
        with self._read() as db:
            row = db.execute(
                "SELECT * FROM journal WHERE provider=? AND resource_id=? AND effect='create' AND outcome='ok'"
                " ORDER BY id DESC LIMIT 1",
                (provider, resource_id),
            ).fetchone()
        if row is None:
            return None
        data = dict(row)
        data["body"] = json.loads(data["body"]) if data["body"] else None
        return data

    def _key_row(
        self, db: Db, provider: str, operation: str, key: str, user: str | None = None
    ) -> dict[str, Any] | None:
        row = db.execute(
            "SELECT * FROM journal WHERE idempotency_key=? AND provider=? AND operation=?"
            " AND COALESCE(actor, '')=? AND outcome IN ('ok','unknown') ORDER BY id DESC LIMIT 1",
            (key, provider, operation, user or ""),
        ).fetchone()
        return dict(row) if row is not None else None

    def find_key(
        self, provider: str, operation: str, key: str, *, user: str | None = None
    ) -> dict[str, Any] | None:
        """The latest ok or unknown row in which `user` (None: the local user) used `key` for this
        provider's `operation`: keys belong to a user, so one user's key never answers another."""
        with self._read() as db:
            return self._key_row(db, provider, operation, key, user)

    def unknown_rows(self) -> list[dict[str, Any]]:
        """Rows whose outcome was never learned, oldest first."""
        with self._read() as db:
            return [dict(r) for r in db.execute("SELECT * FROM journal WHERE outcome='unknown' ORDER BY id")]

    def row(self, row_id: int) -> dict[str, Any] | None:
        with self._read() as db:
            row = db.execute("SELECT * FROM journal WHERE id=?", (row_id,)).fetchone()
        return dict(row) if row is not None else None

    def entries(
        self,
        *,
        limit: int = 50,
        provider: str | None = None,
        outcome: str | None = None,
        user: str | None = None,
    ) -> tuple[list[JournalEntry], int]:
        where: list[str] = []
        args: list[Any] = []
        if provider:
            where.append("provider=?")
            args.append(provider)
        if outcome:
            where.append("outcome=?")
            args.append(outcome)
        if user:
            where.append("(actor=? OR confirmed_by=?)")
            args += [user, user]
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        with self._read() as db:
            total = db.execute(f"SELECT COUNT(*) FROM journal{clause}", args).fetchone()[0]
            rows = db.execute(
                "SELECT id, at, provider, operation, effect, target, method, path, body, usd_per_hour,"
                " outcome, error, resource_id, idempotency_key, sandbox, expires_at, note, kind, actor,"
                " expires_action, confirmed_by"
                f" FROM journal{clause} ORDER BY id DESC LIMIT ?",
                [*args, limit],
            ).fetchall()
        out = [
            JournalEntry(
                id=r[0],
                at=r[1],
                provider=r[2],
                operation=r[3],
                effect=r[4],
                target=r[5],
                method=r[6],
                path=r[7],
                body=json.loads(r[8]) if r[8] else None,
                usd_per_hour=r[9],
                outcome=r[10],
                error=r[11],
                resource_id=r[12],
                idempotency_key=r[13],
                sandbox=bool(r[14]),
                expires_at=r[15],
                note=r[16],
                actor=r[18],
                expires_action=r[19],
                confirmed_by=r[20],
                uri=resource_uri(r[2], r[12]) if r[12] and (r[17] or "endpoint") in BILLABLE_KINDS else None,
            )
            for r in rows
        ]
        return out, int(total)

    def result_of(self, row_id: int) -> Any:
        with self._read() as db:
            row = db.execute("SELECT result FROM journal WHERE id=?", (row_id,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None


def __getattr__(name: str) -> Any:
    """The backends, imported when first named (PostgreSQL's needs psycopg)."""
    if name == "SqliteJournal":
        from gpu_tools.journal.sqlite import SqliteJournal

        return SqliteJournal
    if name == "PostgresJournal":
        from gpu_tools.journal.postgres import PostgresJournal

        return PostgresJournal
    raise AttributeError(name)


__all__ = [
    "APPROVAL_TTL",
    "SCHEMA_VERSION",
    "Approval",
    "Db",
    "Journal",
    "JournalUnavailable",
    "LiveView",
    "PostgresJournal",
    "Reservation",
    "SqliteJournal",
    "display_url",
]
