"""Budgets over time: what was spent, what live resources will cost until they expire, what is left.

Two budgets, both optional: `budget_usd_per_day` over any rolling 24 hours, and `budget_usd_total`
since `budget_start`. A projection is what was spent in the budget's window, plus what every live
resource will cost until its expiry (at most one 24-hour horizon; a resource with no expiry counts the
whole horizon), plus the new plan's cost until its own expiry. The gate refuses a plan whose
projection is over a budget before anyone is asked; `gpu-guard` acts when live spend would cross a
budget before its next pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from gpu_tools.models import BudgetLine, LiveEntry
from gpu_tools.settings import Settings

HORIZON = timedelta(hours=24)
OVERDUE = timedelta(hours=1)  # what an expired, still-live resource is assumed to bill until it goes


class JournalView(Protocol):
    def live(self) -> list[LiveEntry]: ...

    def spent(self, since: datetime, now: datetime) -> float: ...


@dataclass
class Budget:
    name: str
    limit: float
    since: datetime


def budgets(settings: Settings, now: datetime, first_at: str | None) -> list[Budget]:
    out = []
    if settings.budget_usd_per_day is not None:
        out.append(Budget("budget_usd_per_day", settings.budget_usd_per_day, now - HORIZON))
    if settings.budget_usd_total is not None:
        start = settings.budget_start
        if start is None:
            start = datetime.fromisoformat(first_at) if first_at else now
        out.append(Budget("budget_usd_total", settings.budget_usd_total, _aware(start)))
    return out


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def hours_left(
    expires_at: str | None, now: datetime, horizon: timedelta = HORIZON, overdue: timedelta = OVERDUE
) -> float:
    """Hours until `expires_at`, at most the horizon (all of it when there is no expiry). A resource
    past its expiry that is still live bills until someone acts: it counts `overdue` more."""
    top = horizon.total_seconds() / 3600
    if not expires_at:
        return top
    left = (datetime.fromisoformat(expires_at) - now).total_seconds() / 3600
    return min(max(left, overdue.total_seconds() / 3600), top)


def committed(
    entries: list[LiveEntry], now: datetime, horizon: timedelta = HORIZON, overdue: timedelta = OVERDUE
) -> float:
    """What live (or in-flight) resources will cost until they expire, within the horizon."""
    return sum(
        (e.usd_per_hour or 0.0) * hours_left(e.expires_at, now, horizon, overdue)
        for e in entries
        if not e.stopped
    )


def plan_violation(
    view: JournalView,
    settings: Settings,
    *,
    cost: float | None,
    expires_at: str | None,
    target: tuple[str, str] | None,
    first_at: str | None,
    now: datetime | None = None,
) -> str | None:
    """The first budget a new plan (hourly `cost` until `expires_at`) would break, as a sentence with
    the figures, or None. `target` is left out of what is committed (an update replaces its cost)."""
    now = now or datetime.now(UTC)
    found = budgets(settings, now, first_at)
    if not found:
        return None
    if cost is None:
        return (
            f"{found[0].name}: the cost of this plan is unknown and a budget of ${found[0].limit:g} is set."
        )
    others = [e for e in view.live() if (e.provider, e.resource_id) != target]
    future = committed(others, now)
    mine = cost * hours_left(expires_at, now)
    for budget in found:
        spent = view.spent(budget.since, now)
        total = spent + future + mine
        if total > budget.limit:
            window = (
                "in the last 24 hours" if budget.name == "budget_usd_per_day" else "since the budget started"
            )
            until = (
                f"until it expires ({hours_left(expires_at, now):.1f} h)"
                if expires_at
                else "over 24 hours (no expiry)"
            )
            return (
                f"{budget.name}: ${spent:.2f} spent {window}, ${future:.2f} committed by live resources until "
                f"they expire, and ${mine:.2f} for this plan {until} come to ${total:.2f}, over the budget "
                f"of ${budget.limit:g} (${max(0.0, budget.limit - spent - future):.2f} left)."
            )
    return None


def report(
    view: JournalView, settings: Settings, first_at: str | None, now: datetime | None = None
) -> list[BudgetLine]:
    """Each budget's window, what was spent in it, what live resources have committed, what is left."""
    now = now or datetime.now(UTC)
    future = committed(view.live(), now)
    lines = []
    for budget in budgets(settings, now, first_at):
        spent = view.spent(budget.since, now)
        lines.append(
            BudgetLine(
                name=budget.name,
                limit_usd=budget.limit,
                since=budget.since.isoformat(timespec="seconds"),
                spent_usd=round(spent, 4),
                committed_usd=round(future, 4),
                left_usd=round(budget.limit - spent - future, 4),
            )
        )
    return lines
