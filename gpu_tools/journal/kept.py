"""What the caps, budgets and `spend` read, kept as the journal's rows are written, in the same
transaction: the live set (one row per create that is live or in flight) and what each resource
billed (`billing`: pieces of time at a rate, cut at UTC midnight; the running piece left open) with
the total of each day (`spend_days`). A write touches only the rows of the resource it is about, so
a check costs what its answer costs, not what the history holds.

The rules are those of the journal's own events, answered once per resource: the live set is
`_LIVE` for that resource's creates; what it billed is the replay below."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from gpu_tools.journal.schema import _BILLING, _LIVE
from gpu_tools.models import BILLABLE_KINDS, LiveEntry

ALL = "1=1"
_LIVE_COLUMNS = "id, at, provider, operation, target, resource_id, kind, expires_at, sandbox, outcome, expires_action, stopped, cost"


def _utc(value: str) -> datetime:
    when = datetime.fromisoformat(value)
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def _day(when: datetime) -> str:
    return when.astimezone(UTC).date().isoformat()


def key_of(provider: str, resource_id: str | None, row_id: int) -> str:
    return f"{provider}:{resource_id or f'journal#{row_id}'}"


class Kept:
    """The kept tables of one journal (its dialect fills `_LIVE`'s words)."""

    def __init__(self, dialect: dict[str, str]) -> None:
        self.dialect = dialect

    # ---- the live set -------------------------------------------------------------------------
    def refresh_live(self, db: Any, where: str, params: tuple[Any, ...] = ()) -> None:
        """Answer `_LIVE` again for the creates `where` picks (alias `c`), and keep the answer."""
        db.execute(
            f"DELETE FROM live_set WHERE id IN (SELECT c.id FROM journal c WHERE c.effect = 'create' AND ({where}))",
            params,
        )
        db.execute(
            f"INSERT INTO live_set ({_LIVE_COLUMNS}) " + _LIVE.format(FILTER=where, **self.dialect),
            params,
        )

    def live(self, db: Any, kept: bool = True) -> list[LiveEntry]:
        """The live set (`kept=False`: answered from the journal itself, for a journal a test keeps
        at an earlier version, which has no kept tables)."""
        sql = f"SELECT {_LIVE_COLUMNS} FROM live_set ORDER BY id"
        if not kept:
            sql = _LIVE.format(FILTER=ALL, **self.dialect) + " ORDER BY c.id"
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
            for r in db.execute(sql).fetchall()
        ]

    # ---- what was billed ----------------------------------------------------------------------
    def refresh_billing(self, db: Any, keys: Iterable[tuple[str, str | None, int]]) -> None:
        """Replay the billing events of each (provider, resource_id, row id) resource again."""
        days: set[str] = set()
        for provider, resource_id, row_id in {(p, r, i if r is None else 0) for p, r, i in keys}:
            key = key_of(provider, resource_id, row_id)
            days |= {
                d for (d,) in db.execute("SELECT DISTINCT day FROM billing WHERE key=?", (key,)).fetchall()
            }
            db.execute("DELETE FROM billing WHERE key=?", (key,))
            if resource_id is None:
                where, params = "id = ? AND resource_id IS NULL", (row_id,)
            else:
                where, params = "provider = ? AND resource_id = ?", (provider, resource_id)
            rows = db.execute(_BILLING.format(FILTER=where), params).fetchall()
            days |= self._write(db, _replay(rows))
        self._total_days(db, days)

    def rebuild(self, db: Any) -> None:
        """Every kept row again from the whole journal (the upgrade to version 4, and tests that
        rewrite history)."""
        db.execute("DELETE FROM live_set")
        self.refresh_live(db, ALL)
        db.execute("DELETE FROM billing")
        db.execute("DELETE FROM spend_days")
        self._write(db, _replay(db.execute(_BILLING.format(FILTER=ALL)).fetchall()))
        db.execute(
            "INSERT INTO spend_days (day, usd) SELECT day, SUM(usd) FROM billing WHERE end_at IS NOT NULL GROUP BY day"
        )

    @staticmethod
    def _write(db: Any, pieces: list[tuple[str, str, str, str | None, float, float | None]]) -> set[str]:
        for piece in pieces:
            db.execute(
                "INSERT INTO billing (key, day, start_at, end_at, rate, usd) VALUES (?,?,?,?,?,?)", piece
            )
        return {p[1] for p in pieces if p[3] is not None}

    @staticmethod
    def _total_days(db: Any, days: set[str]) -> None:
        for day in sorted(days):
            db.execute("DELETE FROM spend_days WHERE day=?", (day,))
            db.execute(
                "INSERT INTO spend_days (day, usd) SELECT day, SUM(usd) FROM billing"
                " WHERE day=? AND end_at IS NOT NULL GROUP BY day",
                (day,),
            )

    @staticmethod
    def spent(db: Any, since: datetime, now: datetime, kept: bool = True) -> float:
        """USD billed between `since` and `now`: whole days from their totals, the two edge days and
        what is still running from their pieces (`kept=False`: replayed from the whole journal)."""
        since, now = since.astimezone(UTC), now.astimezone(UTC)
        if now <= since:
            return 0.0
        first, last = _day(since), _day(now)
        total = 0.0
        if not kept:
            pieces = [(p[2], p[3], p[4]) for p in _replay(db.execute(_BILLING.format(FILTER=ALL)).fetchall())]
        else:
            if first < last:
                row = db.execute(
                    "SELECT SUM(usd) FROM spend_days WHERE day > ? AND day < ?", (first, last)
                ).fetchone()
                total += float(row[0] or 0.0)
            pieces = db.execute(
                "SELECT start_at, end_at, rate FROM billing WHERE day IN (?, ?) AND end_at IS NOT NULL",
                (first, last),
            ).fetchall()
            pieces += db.execute("SELECT start_at, end_at, rate FROM billing WHERE end_at IS NULL").fetchall()
        for start, end, rate in pieces:
            a = max(_utc(start), since)
            b = min(_utc(end) if end is not None else now, now)
            if b > a:
                total += rate * (b - a).total_seconds() / 3600
        return total


def _replay(rows: list[Any]) -> list[tuple[str, str, str, str | None, float, float | None]]:
    """The journal's billing events in id order as pieces (key, day, start, end, rate, usd): a create
    (ok, or unknown at its planned cost) starts billing, a stop pauses it, a start resumes it, an
    update with a cost changes the rate, a delete ends it. Closed pieces are cut at UTC midnight."""
    state: dict[str, list[Any]] = {}  # key -> [rate, running since (or None)]
    pieces: list[tuple[str, str, str, str | None, float, float | None]] = []

    def close(key: str, until: datetime) -> None:
        rate, start = state[key]
        if start is None or rate is None:
            return
        a = start
        while a < until:
            midnight = datetime.combine(a.date() + timedelta(days=1), datetime.min.time(), UTC)
            b = min(until, midnight)
            usd = rate * (b - a).total_seconds() / 3600
            pieces.append((key, _day(a), a.isoformat(), b.isoformat(), rate, usd))
            a = b

    for row_id, at, provider, operation, effect, resource_id, usd, kind, outcome in rows:
        when = _utc(at)
        if effect == "create":
            if (kind or "endpoint") not in BILLABLE_KINDS:
                continue
            state[key_of(provider, resource_id, row_id)] = [usd, when]
            continue
        key = f"{provider}:{resource_id}"
        if key not in state or outcome != "ok":
            continue
        close(key, when)
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
    for key, (rate, start) in state.items():
        if start is not None and rate is not None:
            pieces.append((key, _day(start), start.isoformat(), None, rate, None))
    return pieces
