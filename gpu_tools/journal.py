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
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from gpu_tools.errors import GpuToolsError, redact_value, register_secret
from gpu_tools.models import BILLABLE_KINDS, JournalEntry, LiveEntry, Plan, resource_uri

SCHEMA_VERSION = 5
# {ID}, {REAL} and {GREATEST} (of two values) are the only words the dialects spell differently.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    id {ID},
    at TEXT NOT NULL,
    provider TEXT NOT NULL,
    operation TEXT NOT NULL,
    effect TEXT NOT NULL,
    target TEXT NOT NULL,
    method TEXT,
    path TEXT,
    body TEXT,
    usd_per_hour {REAL},
    outcome TEXT NOT NULL,
    error TEXT,
    resource_id TEXT,
    result TEXT,
    idempotency_key TEXT,
    sandbox INTEGER NOT NULL DEFAULT 0,
    kind TEXT,
    expires_at TEXT
);
CREATE INDEX IF NOT EXISTS journal_key ON journal (idempotency_key);
"""
# Version 2: scoped idempotency keys with the arguments' hash, approvals, reconciliation notes.
_V2_COLUMNS = {
    "kind": "TEXT",
    "expires_at": "TEXT",
    "args_hash": "TEXT",
    "approval_id": "TEXT",
    "note": "TEXT",
    "actor": "TEXT",
    "expires_action": "TEXT",
}
_V2 = """
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    digest TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at TEXT NOT NULL,
    consumed_at TEXT,
    journal_id INTEGER,
    result TEXT
);
CREATE INDEX IF NOT EXISTS approvals_fingerprint ON approvals (fingerprint, created_at);
CREATE INDEX IF NOT EXISTS journal_resource ON journal (provider, resource_id, effect, outcome);
CREATE INDEX IF NOT EXISTS journal_outcome ON journal (outcome, effect);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Version 3: who confirmed, keys unique in the database, leases (one gpu-guard acts per pass).
_V3_COLUMNS = {"journal": {"confirmed_by": "TEXT"}, "approvals": {"asked_by": "TEXT"}}
_V3 = """
CREATE UNIQUE INDEX IF NOT EXISTS journal_key_unique ON journal (provider, operation, idempotency_key)
    WHERE idempotency_key IS NOT NULL AND outcome IN ('ok', 'unknown');
CREATE INDEX IF NOT EXISTS journal_actor ON journal (actor, confirmed_by);
CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, until TEXT NOT NULL)
"""
# Version 4: idempotency keys belong to the user who asked (actor; '' the local user) as well.
_V4 = """
DROP INDEX IF EXISTS journal_key_unique;
CREATE UNIQUE INDEX IF NOT EXISTS journal_key_user_unique
    ON journal (provider, operation, idempotency_key, COALESCE(actor, ''))
    WHERE idempotency_key IS NOT NULL AND outcome IN ('ok', 'unknown')
"""
# Version 5: approvals decided on the approval page (gpu_tools.approvals): what the page shows, who
# decided, how (form, page, passkey), every approver's decision, and the approvers' passkeys.
_V5_COLUMNS = {
    "approvals": {
        "expires_at": "TEXT",  # set by approval_ttl; older rows expire APPROVAL_TTL after created_at
        "mode": "TEXT",  # what the policy asked for: form, page or passkey
        "view": "TEXT",  # the plan as the page shows it (JSON, secrets masked)
        "client": "TEXT",  # the MCP client's (or the front's) name
        "status": "TEXT",  # NULL pending, 'approved', 'denied'
        "decided_by": "TEXT",
        "decided_how": "TEXT",
        "decided_at": "TEXT",
    }
}
_V5 = """
CREATE TABLE IF NOT EXISTS approval_decisions (
    approval_id TEXT NOT NULL,
    approver TEXT NOT NULL,
    decision TEXT NOT NULL,
    how TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (approval_id, approver)
);
CREATE TABLE IF NOT EXISTS approvers (
    name TEXT NOT NULL,
    credential_id TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    sign_count INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS approver_events (
    id {ID},
    at TEXT NOT NULL,
    event TEXT NOT NULL,
    name TEXT NOT NULL,
    actor TEXT
)
"""
APPROVAL_TTL = timedelta(minutes=10)  # as long as an MCP client may take to answer a question

# A create counts as live while it is ok or unknown and no later ok delete removed it; its cost is
# that of the latest ok update with a figure, else the create's own (the planned one if unknown),
# raised to any later update whose outcome is unknown (it may have taken effect). It is stopped when
# this tool's last stop (ok) or start (ok, or unknown: it may have started) of it was a stop.
_LIVE = """
SELECT c.id, c.at, c.provider, c.operation, c.target, c.resource_id, c.kind, c.expires_at, c.sandbox,
       c.outcome, c.expires_action,
       (SELECT s.operation FROM journal s
        WHERE s.provider = c.provider AND s.resource_id = c.resource_id AND s.id > c.id
          AND ((s.operation = 'stop_resource' AND s.outcome = 'ok')
               OR (s.operation = 'start_resource' AND s.outcome IN ('ok', 'unknown')))
        ORDER BY s.id DESC LIMIT 1) = 'stop_resource',
       {GREATEST}(COALESCE(l.cost, -1), COALESCE((SELECT MAX(u.usd_per_hour) FROM journal u
                 WHERE u.provider = c.provider AND u.resource_id = c.resource_id AND u.effect = 'update'
                   AND u.outcome = 'unknown' AND u.id > c.id), -1))
FROM journal c,
     (SELECT COALESCE((SELECT u.usd_per_hour FROM journal u
                       WHERE u.provider = c2.provider AND u.resource_id = c2.resource_id AND u.effect = 'update'
                         AND u.outcome = 'ok' AND u.usd_per_hour IS NOT NULL AND u.id > c2.id
                       ORDER BY u.id DESC LIMIT 1), c2.usd_per_hour) AS cost, c2.id AS cid
      FROM journal c2 WHERE c2.effect = 'create') l
WHERE c.effect = 'create' AND l.cid = c.id
  AND (c.outcome = 'unknown' OR (c.outcome = 'ok' AND c.resource_id IS NOT NULL))
  AND COALESCE(c.kind, 'endpoint') IN ('endpoint', 'container', 'instance')
  AND NOT EXISTS (SELECT 1 FROM journal d
                  WHERE d.provider = c.provider AND d.resource_id = c.resource_id
                    AND d.effect = 'destroy' AND d.outcome = 'ok' AND d.id > c.id)
ORDER BY c.id
"""


_BILLING = """
SELECT id, at, provider, operation, effect, resource_id, usd_per_hour, kind, outcome FROM journal
WHERE (effect = 'create' AND (outcome = 'unknown' OR (outcome = 'ok' AND resource_id IS NOT NULL)))
   OR (effect IN ('update', 'destroy') AND outcome = 'ok')
ORDER BY id
"""


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


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]


def _now(precise: bool = False) -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds" if precise else "seconds")


def display_url(url: str) -> str:
    """A database URL as it may be shown: the password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


@dataclass
class Approval:
    id: str
    fingerprint: str
    digest: str
    message: str
    created_at: str
    consumed_at: str | None
    journal_id: int | None
    result: Any
    asked_by: str | None = None
    # Version 5 (the approval page): see _V5_COLUMNS.
    expires_at: str | None = None
    mode: str | None = None
    view: Any = None
    client: str | None = None
    status: str | None = None
    decided_by: str | None = None
    decided_how: str | None = None
    decided_at: str | None = None

    @property
    def expiry(self) -> datetime:
        if self.expires_at:
            return datetime.fromisoformat(self.expires_at)
        return datetime.fromisoformat(self.created_at) + APPROVAL_TTL

    @property
    def expired(self) -> bool:
        return self.expiry < datetime.now(UTC)


@dataclass
class Reservation:
    """What `reserve` decided: a row to send under, or why not."""

    row_id: int | None = None  # the intent row (send now)
    refused: str | None = None  # a cap refused it (a refused row was written)
    used: Approval | None = None  # the approval was already consumed: a replay
    key_row: dict[str, Any] | None = None  # the idempotency key was already used


class _Conflict(Exception):
    """Another writer consumed the approval first (the database said so)."""


class Journal:
    """Everything the journal does, in SQL both backends speak. A backend supplies the connection,
    `_tx` (a write transaction; `serialize` makes it exclusive among every writer of the journal),
    `_read`, the schema version's storage and the few words its dialect spells differently."""

    DIALECT: dict[str, str] = {}
    location: str
    _integrity_errors: tuple[type[BaseException], ...] = ()

    @staticmethod
    def open(target: str | Path) -> Journal:
        """The journal at a PostgreSQL URL, or in the SQLite file at a path."""
        if isinstance(target, str) and target.startswith(("postgresql://", "postgres://")):
            return PostgresJournal(target)
        if isinstance(target, str) and "://" in target:
            raise JournalUnavailable(
                f"journal_url must be a postgresql:// URL (got {display_url(target).split('://')[0]}://...); "
                "leave it unset for the SQLite journal in the data directory, or set journal_path."
            )
        return SqliteJournal(Path(target))

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
        with self._tx(serialize=True) as db:
            version = self._version(db)
            if version >= target:
                return
            self._upgrade(db, version, target)
            self._set_version(db, target)

    def _ddl(self, script: str) -> list[str]:
        return [statement.format(**self.DIALECT) for statement in _statements(script)]

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
        if version < 4 <= target:
            for statement in self._ddl(_V4):
                db.execute(statement)
        if version < 5 <= target:
            for table, columns in _V5_COLUMNS.items():
                self._add_columns(db, table, columns)
            for statement in self._ddl(_V5):
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
                _now(),
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
        return int(cur.fetchone()[0])

    def record(self, plan: Plan, effect: str, outcome: str, **kw: Any) -> int:
        """Write a row that needs no check: a refusal, or a step of an already approved plan."""
        with self._tx() as db:
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
    ) -> Reservation:
        """In one transaction, exclusive among every writer of this journal (every server of a team):
        the approval is unused, the key is free, the caps and budgets hold (`cap` reads what is live or
        in flight, and what was spent, inside the transaction), then the intent row. The database
        refuses a second use of a key or an approval even if that exclusion were ever broken."""
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
                if cap is not None:
                    refusal = cap(LiveView(self, db))
                    if refusal is not None:
                        self._insert(
                            db,
                            plan,
                            effect,
                            "refused",
                            error=f"policy {refusal}",
                            idempotency_key=idempotency_key,
                            args_hash=args_hash,
                            approval_id=approval_id,
                            **who,
                        )
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
                        "UPDATE approvals SET consumed_at=?, journal_id=? WHERE id=? AND consumed_at IS NULL",
                        (_now(), row_id, approval_id),
                    )
                    if cur.rowcount != 1:
                        raise _Conflict
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
        now = now or datetime.now(UTC)
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
        now = now or datetime.now(UTC)
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
        it, an update with a cost changes the rate, a delete ends it."""
        rows = db.execute(_BILLING).fetchall()
        state: dict[str, list[Any]] = {}  # key -> [rate, running since (or None)]
        total = 0.0

        def accrue(key: str, until: datetime) -> None:
            nonlocal total
            rate, start = state[key]
            if start is None or rate is None:
                return
            a, b = max(start, since), min(until, now)
            if b > a:
                total += rate * (b - a).total_seconds() / 3600

        for row_id, at, provider, operation, effect, resource_id, usd, kind, outcome in rows:
            when = datetime.fromisoformat(at)
            if effect == "create":
                if (kind or "endpoint") not in BILLABLE_KINDS:
                    continue
                state[f"{provider}:{resource_id or f'journal#{row_id}'}"] = [usd, when]
                continue
            key = f"{provider}:{resource_id}"
            if key not in state or outcome != "ok":
                continue
            accrue(key, when)
            if effect == "destroy":
                del state[key]
            elif operation == "stop_resource":
                state[key][1] = None
            elif operation == "start_resource":
                state[key][1] = when
            else:
                state[key][1] = state[key][1] and when
                if usd is not None:
                    state[key][0] = usd
        for key in state:
            accrue(key, now)
        return total

    def spent(self, since: datetime, now: datetime | None = None) -> float:
        with self._read() as db:
            return self._spent(db, since, now or datetime.now(UTC))

    def note(self, row_id: int, note: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE journal SET note=? WHERE id=?", (note, row_id))

    # ---- approvals --------------------------------------------------------------------------
    def new_approval(
        self,
        fingerprint: str,
        digest: str,
        message: str | Callable[[str], str],
        *,
        asked_by: str | None = None,
        page: dict[str, Any] | None = None,
    ) -> Approval:
        """A new, unused approval; `message` may be a function of the approval's id. `page`: what the
        approval page needs (expires_at, mode, view, client), see `_V5_COLUMNS`."""
        approval_id = secrets.token_hex(4)
        if callable(message):
            message = message(approval_id)
        approval = Approval(
            id=approval_id,
            fingerprint=fingerprint,
            digest=digest,
            message=message,
            created_at=_now(precise=True),  # orders approvals made within one second
            consumed_at=None,
            journal_id=None,
            result=None,
            asked_by=asked_by,
            **(page or {}),
        )
        view = json.dumps(redact_value(approval.view)) if approval.view is not None else None
        with self._tx() as db:
            cutoff = (datetime.now(UTC) - timedelta(days=7)).isoformat(timespec="seconds")
            db.execute("DELETE FROM approvals WHERE created_at < ?", (cutoff,))
            db.execute(
                "INSERT INTO approvals (id, fingerprint, digest, message, created_at, asked_by, expires_at,"
                " mode, view, client) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    approval.id,
                    fingerprint,
                    digest,
                    message,
                    approval.created_at,
                    asked_by,
                    approval.expires_at,
                    approval.mode,
                    view,
                    approval.client,
                ),
            )
        return approval

    def latest_approval(self, fingerprint: str) -> Approval | None:
        with self._read() as db:
            row = db.execute(
                "SELECT * FROM approvals WHERE fingerprint=? ORDER BY created_at DESC, id DESC LIMIT 1",
                (fingerprint,),
            ).fetchone()
            return self._to_approval(row)

    def approval(self, approval_id: str) -> Approval | None:
        with self._read() as db:
            return self._approval(db, approval_id)

    def set_approval_result(self, approval_id: str, result: Any) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE approvals SET result=? WHERE id=?", (json.dumps(redact_value(result)), approval_id)
            )

    def _approval(self, db: Db, approval_id: str) -> Approval | None:
        row = db.execute("SELECT * FROM approvals WHERE id=?", (approval_id,)).fetchone()
        return self._to_approval(row)

    @staticmethod
    def _to_approval(row: Any) -> Approval | None:
        if row is None:
            return None
        data = dict(row)
        data["result"] = json.loads(data["result"]) if data["result"] else None
        data["view"] = json.loads(data["view"]) if data.get("view") else None
        return Approval(**data)

    # ---- approval decisions and approvers (version 5: the approval page) ---------------------
    def decide(
        self, approval_id: str, decision: str, *, by: str, how: str, quorum: int = 1
    ) -> tuple[Approval, bool]:
        """Record one approver's decision. A denial decides at once; approvals decide when `quorum`
        distinct approvers approved. Returns the approval and whether this decision was recorded
        (False: the approval was already decided, or this approver already answered: a conflict)."""
        assert decision in ("approved", "denied")
        with self._tx(serialize=True) as db:
            approval = self._approval(db, approval_id)
            if approval is None or approval.status is not None or approval.consumed_at is not None:
                return approval, False  # type: ignore[return-value]
            if db.execute(
                "SELECT 1 FROM approval_decisions WHERE approval_id=? AND approver=?", (approval_id, by)
            ).fetchone():
                return approval, False
            now = _now()
            db.execute(
                "INSERT INTO approval_decisions (approval_id, approver, decision, how, at) VALUES (?,?,?,?,?)",
                (approval_id, by, decision, how, now),
            )
            approvers = [
                r[0]
                for r in db.execute(
                    "SELECT approver FROM approval_decisions WHERE approval_id=? AND decision='approved'"
                    " ORDER BY at, approver",
                    (approval_id,),
                )
            ]
            if decision == "denied" or len(approvers) >= quorum:
                db.execute(
                    "UPDATE approvals SET status=?, decided_by=?, decided_how=?, decided_at=? WHERE id=?",
                    (decision, by if decision == "denied" else ", ".join(approvers), how, now, approval_id),
                )
            return self._approval(db, approval_id), True  # type: ignore[return-value]

    def decisions(self, approval_id: str) -> list[dict[str, Any]]:
        with self._read() as db:
            return [
                dict(r)
                for r in db.execute(
                    "SELECT * FROM approval_decisions WHERE approval_id=? ORDER BY at, approver",
                    (approval_id,),
                )
            ]

    def open_approvals(self) -> list[Approval]:
        """Approvals waiting for a decision on the page (unexpired ones; newest first)."""
        with self._read() as db:
            rows = db.execute(
                "SELECT * FROM approvals WHERE status IS NULL AND consumed_at IS NULL AND mode IS NOT NULL"
                " ORDER BY created_at DESC LIMIT 200"
            ).fetchall()
        found = [self._to_approval(r) for r in rows]
        return [a for a in found if a is not None and not a.expired]

    def add_approver(self, name: str, credential_id: str, public_key: str, *, by: str | None) -> None:
        with self._tx(serialize=True) as db:
            db.execute(
                "INSERT INTO approvers (name, credential_id, public_key, sign_count, created_at) VALUES (?,?,?,0,?)",
                (name, credential_id, public_key, _now()),
            )
            db.execute(
                "INSERT INTO approver_events (at, event, name, actor) VALUES (?,?,?,?)",
                (_now(), "enrolled", name, by),
            )

    def remove_approver(self, name: str, *, by: str | None) -> int:
        with self._tx(serialize=True) as db:
            gone = db.execute("DELETE FROM approvers WHERE name=?", (name,)).rowcount
            if gone:
                db.execute(
                    "INSERT INTO approver_events (at, event, name, actor) VALUES (?,?,?,?)",
                    (_now(), "removed", name, by),
                )
            return int(gone)

    def approvers(self) -> list[dict[str, Any]]:
        with self._read() as db:
            return [dict(r) for r in db.execute("SELECT * FROM approvers ORDER BY name, created_at")]

    def approver_events(self) -> list[dict[str, Any]]:
        with self._read() as db:
            return [dict(r) for r in db.execute("SELECT * FROM approver_events ORDER BY id")]

    def use_credential(self, credential_id: str, sign_count: int) -> None:
        with self._tx() as db:
            db.execute("UPDATE approvers SET sign_count=? WHERE credential_id=?", (sign_count, credential_id))

    # ---- reading ----------------------------------------------------------------------------
    def _live(self, db: Db) -> list[LiveEntry]:
        return [
            LiveEntry(
                journal_id=r[0],
                created_at=r[1],
                provider=r[2],
                created_by=r[3],
                name=r[4],
                resource_id=r[5],
                kind=r[6],
                expires_at=r[7],
                sandbox=bool(r[8]),
                outcome=r[9],
                expires_action=r[10] or "delete",
                stopped=bool(r[11]),
                usd_per_hour=r[12] if r[12] is not None and r[12] >= 0 else None,
            )
            for r in db.execute(_LIVE.format(**self.DIALECT)).fetchall()
        ]

    def live(self) -> list[LiveEntry]:
        """Billable resources this tool created (or may have: outcome unknown) and has not deleted,
        with their latest cost figure. Answered in SQL, so it costs what the answer costs."""
        with self._read() as db:
            return self._live(db)

    def created_ids(self) -> set[tuple[str, str]]:
        """Every (provider, resource_id) this tool ever created, deleted or not."""
        with self._read() as db:
            rows = db.execute(
                "SELECT DISTINCT provider, resource_id FROM journal WHERE effect='create' AND resource_id IS NOT NULL"
            ).fetchall()
        return {(p, r) for p, r in rows}

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


class SqliteJournal(Journal):
    """The embedded journal: one SQLite file; `BEGIN IMMEDIATE` makes every write transaction
    exclusive among this process's threads and every other process on the file."""

    DIALECT = {"ID": "INTEGER PRIMARY KEY AUTOINCREMENT", "REAL": "REAL", "GREATEST": "MAX"}
    _integrity_errors = (sqlite3.IntegrityError,)

    def __init__(self, path: Path, *, schema_version: int = SCHEMA_VERSION) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.location = str(path)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._migrate(schema_version)

    @contextmanager
    def _tx(self, serialize: bool = False) -> Iterator[Db]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[Db]:
        with self._lock:
            yield self._db

    def _version(self, db: Db) -> int:
        return int(db.execute("PRAGMA user_version").fetchone()[0])

    def _set_version(self, db: Db, version: int) -> None:
        db.execute(f"PRAGMA user_version = {int(version)}")

    def _columns(self, db: Db, table: str) -> set[str]:
        return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _PgRow(tuple):  # type: ignore[type-arg]
    """A row readable by position and, like sqlite3.Row, by `dict(row)`."""

    names: tuple[str, ...] = ()

    def keys(self) -> tuple[str, ...]:
        return self.names

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            return tuple.__getitem__(self, self.names.index(key))
        return tuple.__getitem__(self, key)


class _PgDb:
    """A psycopg connection that takes the `?` placeholders the shared SQL is written with."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Any = ()) -> Any:
        return self.conn.execute(sql.replace("?", "%s"), tuple(params) if params else None)


class PostgresJournal(Journal):
    """The team journal on PostgreSQL (psycopg 3). `reserve` and the schema's upgrade run under one
    advisory transaction lock on the database, so every server's creates are checked one at a time
    against what all of them have in flight; reads see every committed row."""

    DIALECT = {
        "ID": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        "REAL": "DOUBLE PRECISION",
        "GREATEST": "GREATEST",
    }
    LOCK = 0x6770755F746F6F6C  # "gpu_tool": the advisory lock every server of the journal takes

    def __init__(self, url: str, *, schema_version: int = SCHEMA_VERSION) -> None:
        try:
            import psycopg
        except ImportError:
            raise JournalUnavailable(
                "journal_url is a PostgreSQL URL, but psycopg is not installed: "
                "pip install 'gpu-tools[postgres]' (or 'psycopg[binary]')."
            ) from None
        self._psycopg = psycopg
        password = urlsplit(url).password
        if password:
            register_secret(password)
        self.url = url
        self.location = display_url(url)
        self._integrity_errors = (psycopg.errors.UniqueViolation,)
        self._lock = threading.RLock()
        self._conn: Any = None
        self._connect()
        self._migrate(schema_version)

    def _connect(self) -> None:
        psycopg = self._psycopg

        def rows(cursor: Any) -> Callable[[Any], _PgRow]:
            names = tuple(c.name for c in cursor.description or ())

            def make(values: Any) -> _PgRow:
                row = _PgRow(values)
                row.names = names
                return row

            return make

        try:
            self._conn = psycopg.connect(self.url, autocommit=True, row_factory=rows, connect_timeout=10)
        except psycopg.Error as exc:
            raise JournalUnavailable(
                f"cannot reach the journal database {self.location}: {str(exc).strip().splitlines()[0]}"
            ) from None

    def _live_conn(self) -> _PgDb:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._connect()  # the server restarted or the connection dropped: one new connection
        return _PgDb(self._conn)

    @contextmanager
    def _tx(self, serialize: bool = False) -> Iterator[Db]:
        with self._lock:
            db = self._live_conn()
            with self._conn.transaction():
                if serialize:
                    db.execute("SELECT pg_advisory_xact_lock(?)", (self.LOCK,))
                yield db

    @contextmanager
    def _read(self) -> Iterator[Db]:
        with self._lock:
            yield self._live_conn()

    def _version(self, db: Db) -> int:
        if db.execute("SELECT to_regclass('meta')").fetchone()[0] is None:
            return 0
        row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else 0

    def _set_version(self, db: Db, version: int) -> None:
        db.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?)"
            " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (str(version),),
        )

    def _columns(self, db: Db, table: str) -> set[str]:
        rows = db.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ?",
            (table,),
        ).fetchall()
        return {r[0] for r in rows}

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
