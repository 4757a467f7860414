"""The journal: one SQLite row per mutation attempt, written before the request is sent.

The intent row is committed with outcome `unknown` before anything goes to the provider and is
updated to `ok`, `failed` or `refused` afterwards. A crash in between leaves `unknown`, which
`history` shows, so no billable resource is ever untracked. Bodies are stored masked.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gpu_tools.models import JournalEntry, LiveEntry, Plan

_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    provider TEXT NOT NULL,
    operation TEXT NOT NULL,
    effect TEXT NOT NULL,
    target TEXT NOT NULL,
    method TEXT,
    path TEXT,
    body TEXT,
    usd_per_hour REAL,
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
# Columns added after the first release, added to older journals on open.
_LATER_COLUMNS = {"kind": "TEXT", "expires_at": "TEXT"}
BILLABLE_KINDS = ("endpoint", "container", "instance")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Journal:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        have = {row[1] for row in self._db.execute("PRAGMA table_info(journal)")}
        for column, sql_type in _LATER_COLUMNS.items():
            if column not in have:
                self._db.execute(f"ALTER TABLE journal ADD COLUMN {column} {sql_type}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def record(
        self,
        plan: Plan,
        effect: str,
        outcome: str,
        *,
        error: str | None = None,
        idempotency_key: str | None = None,
        expires_at: str | None = None,
    ) -> int:
        """Write a row; `outcome='unknown'` is the intent written before sending."""
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO journal (at, provider, operation, effect, target, method, path, body,"
                " usd_per_hour, outcome, error, idempotency_key, sandbox, expires_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    _now(),
                    plan.provider,
                    plan.operation,
                    effect,
                    plan.target,
                    plan.method,
                    plan.path,
                    json.dumps(plan.body) if plan.body is not None else None,
                    plan.usd_per_hour_max if plan.usd_per_hour_max is not None else plan.usd_per_hour,
                    outcome,
                    error,
                    idempotency_key,
                    int(plan.sandbox),
                    expires_at,
                ),
            )
            return int(cur.lastrowid or 0)

    def finish(
        self,
        row_id: int,
        outcome: str,
        *,
        error: str | None = None,
        resource_id: str | None = None,
        result: Any = None,
        kind: str | None = None,
    ) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE journal SET outcome=?, error=?, resource_id=?, result=?, kind=COALESCE(?, kind) WHERE id=?",
                (
                    outcome,
                    error,
                    resource_id,
                    json.dumps(result) if result is not None else None,
                    kind,
                    row_id,
                ),
            )

    def live(self) -> list[LiveEntry]:
        """Billable resources this tool created and has not deleted, with their latest cost figure.

        Built from the ok rows in order: a create adds, an update with a cost replaces the figure, a
        delete removes. Rows whose outcome is unknown are not counted here (`history` shows them).
        """
        with self._lock:
            rows = self._db.execute(
                "SELECT id, at, provider, operation, effect, target, usd_per_hour, resource_id, kind, expires_at,"
                " sandbox FROM journal WHERE outcome='ok' AND resource_id IS NOT NULL ORDER BY id"
            ).fetchall()
        live: dict[tuple[str, str], LiveEntry] = {}
        for _id, at, provider, operation, effect, target, usd, rid, kind, expires_at, sandbox in rows:
            key = (provider, rid)
            if effect == "create" and (kind or "endpoint") in BILLABLE_KINDS:
                live[key] = LiveEntry(
                    provider=provider,
                    resource_id=rid,
                    kind=kind,
                    name=target,
                    created_at=at,
                    usd_per_hour=usd,
                    expires_at=expires_at,
                    created_by=operation,
                    sandbox=bool(sandbox),
                )
            elif effect == "destroy":
                live.pop(key, None)
            elif effect == "update" and key in live and usd is not None:
                live[key].usd_per_hour = usd
        return list(live.values())

    def created_ids(self) -> set[tuple[str, str]]:
        """Every (provider, resource_id) this tool ever created, deleted or not."""
        with self._lock:
            rows = self._db.execute(
                "SELECT provider, resource_id FROM journal WHERE effect='create' AND resource_id IS NOT NULL"
            ).fetchall()
        return {(p, r) for p, r in rows}

    def find_key(self, key: str) -> sqlite3.Row | None:
        with self._lock:
            self._db.row_factory = sqlite3.Row
            try:
                return self._db.execute(
                    "SELECT * FROM journal WHERE idempotency_key=? AND outcome IN ('ok','unknown')"
                    " ORDER BY id DESC LIMIT 1",
                    (key,),
                ).fetchone()
            finally:
                self._db.row_factory = None

    def entries(
        self, *, limit: int = 50, provider: str | None = None, outcome: str | None = None
    ) -> tuple[list[JournalEntry], int]:
        where, args = [], []
        if provider:
            where.append("provider=?")
            args.append(provider)
        if outcome:
            where.append("outcome=?")
            args.append(outcome)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        with self._lock:
            total = self._db.execute(f"SELECT COUNT(*) FROM journal{clause}", args).fetchone()[0]
            rows = self._db.execute(
                "SELECT id, at, provider, operation, effect, target, method, path, body, usd_per_hour,"
                f" outcome, error, resource_id, idempotency_key, sandbox, expires_at FROM journal{clause}"
                " ORDER BY id DESC LIMIT ?",
                [*args, limit],
            ).fetchall()
        out = []
        for r in rows:
            out.append(
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
                )
            )
        return out, int(total)

    def result_of(self, row_id: int) -> Any:
        with self._lock:
            row = self._db.execute("SELECT result FROM journal WHERE id=?", (row_id,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None
