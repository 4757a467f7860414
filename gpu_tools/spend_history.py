"""Spend over time, per provider and in total, replayed from the journal's billing rows.

The same reading of the journal as the budget checks: a create (ok, or unknown at its planned cost)
starts billing at its hourly cost, a stop pauses it, a start resumes it, an update with a cost changes
the rate, a delete ends it. Between two such rows a provider's spend grows linearly, so a point at
each row (plus the period's start and end) draws it exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from gpu_tools.models import BILLABLE_KINDS, SpendPoint

TOTAL = "total"


def _when(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def spend_series(
    rows: Iterable[tuple[Any, ...]], since: datetime, now: datetime, provider: str | None = None
) -> list[SpendPoint]:
    """Cumulative USD from `since` per provider (and `total`) at `since`, at each billing row in the
    period, and at `now`. `rows` are the journal's billing rows, oldest first:
    (id, at, provider, operation, effect, resource_id, usd_per_hour, kind, outcome)."""
    state: dict[str, list[Any]] = {}  # key -> [provider, rate, running since or None]
    spent: dict[str, float] = {}
    points: list[SpendPoint] = []

    def advance(until: datetime) -> None:
        """Accrue every running resource up to `until` (clipped to the period)."""
        for key, (prov, rate, start) in state.items():
            if start is None or rate is None:
                continue
            a, b = max(start, since), min(until, now)
            if b > a:
                spent[prov] = spent.get(prov, 0.0) + rate * (b - a).total_seconds() / 3600
            state[key][2] = max(start, min(until, now))

    def mark(at: datetime) -> None:
        stamp = at.isoformat(timespec="seconds")
        for prov in sorted(spent):
            points.append(SpendPoint(at=stamp, provider=prov, usd=round(spent[prov], 4)))
        points.append(SpendPoint(at=stamp, provider=TOTAL, usd=round(sum(spent.values()), 4)))

    started = False
    for row_id, at, prov, operation, effect, resource_id, usd, kind, outcome in rows:
        if provider is not None and prov != provider:
            continue
        when = _when(at)
        if when > now:
            break
        if not started and when >= since:
            advance(since)
            mark(since)
            started = True
        advance(when)
        if effect == "create":
            if (kind or "endpoint") not in BILLABLE_KINDS:
                continue
            spent.setdefault(prov, 0.0)
            state[f"{prov}:{resource_id or f'journal#{row_id}'}"] = [prov, usd, when]
        else:
            key = f"{prov}:{resource_id}"
            if key not in state or outcome != "ok":
                continue
            if effect == "destroy":
                del state[key]
            elif operation == "stop_resource":
                state[key][2] = None
            elif operation == "start_resource":
                state[key][2] = when
            elif usd is not None:
                state[key][1] = usd
        if started:
            mark(when)
    if not started:
        advance(since)
        mark(since)
    advance(now)
    mark(now)
    last = {(p.at, p.provider): p for p in points}  # rows within one second: the last figure counts
    return list(last.values())
