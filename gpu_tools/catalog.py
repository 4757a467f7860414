"""Cross-provider offers: GPU name normalization, USD figures, filtering and sorting."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from gpu_tools import budget
from gpu_tools.gpus import canonical_gpu, price_order, with_usd
from gpu_tools.models import (
    BILLABLE_KINDS,
    Expiry,
    GuardStatus,
    LiveEntry,
    Offer,
    OrphanReport,
    ProviderSpend,
    Resource,
    SpendLine,
    SpendPoint,
    SpendReport,
    parse_time,
)

if TYPE_CHECKING:
    from gpu_tools.context import Context
    from gpu_tools.operations import ListOffersInput, ProviderFilter

BILLING_STATUSES = ("running", "pending")


def named_region(offer: Offer) -> Offer:
    """The offer with its region's name where the provider gives one beside the id (Sesterce)."""
    name = offer.details.get("region_name")
    if not isinstance(name, str) or not name or offer.region == name:
        return offer
    return offer.model_copy(update={"region": name, "region_id": offer.region_id or offer.region})


def journal_costs(tk: Context, resources: list[Resource]) -> None:
    """One cost per resource: the provider's hourly figure where it states one (price_source
    "provider"), otherwise the plan's, journaled at creation ("journal")."""
    for r in resources:
        if r.usd_per_hour is not None and r.price_source is None:
            r.price_source = "provider"
    if all(r.usd_per_hour is not None for r in resources):
        return
    live = {(e.provider, e.resource_id): e for e in tk.journal.live() if e.resource_id}
    for r in resources:
        entry = live.get((r.provider, r.resource_id))
        if r.usd_per_hour is None and entry is not None and entry.usd_per_hour is not None:
            r.usd_per_hour, r.price_source = entry.usd_per_hour, "journal"


def filter_offers(offers: list[Offer], q: ListOffersInput) -> list[Offer]:
    out = []
    gpu = q.gpu.lower() if q.gpu else None
    canon = canonical_gpu(q.gpu)
    for o in map(named_region, map(with_usd, offers)):
        if q.kind and o.kind != q.kind:
            continue
        if gpu and gpu not in o.gpu_name.lower() and gpu != (o.gpu_model or "").lower():
            if canon is None or canon != o.gpu_model:
                continue
        if q.region and q.region.lower() not in {
            str(o.region or "").lower(),
            str(o.region_id or "").lower(),
            str(o.details.get("region_id", "")).lower(),
        }:
            continue
        if q.min_gpu_count and (o.gpu_count or 0) < q.min_gpu_count:
            continue
        if q.max_gpu_count and (o.gpu_count or 1) > q.max_gpu_count:
            continue
        if q.max_usd_per_hour is not None and (o.usd_per_hour is None or o.usd_per_hour > q.max_usd_per_hour):
            continue
        if q.min_gpu_memory_gb and (o.gpu_memory_gb or 0) < q.min_gpu_memory_gb:
            continue
        if q.max_usd_per_gpu_hour is not None and (
            o.usd_per_gpu_hour is None or o.usd_per_gpu_hour > q.max_usd_per_gpu_hour
        ):
            continue
        if q.available_only and o.available is False:
            continue
        out.append(o)
    out.sort(key=price_order)
    return out


async def _live_at_providers(tk: Context, only: str | None) -> tuple[list[Resource], list[Any]]:
    resources, statuses = await tk.fan_out("resources", only, tk.resources)
    return [r for r in resources if r.kind in BILLABLE_KINDS and r.status != "deleting"], statuses


async def spend(tk: Context, data: ProviderFilter, progress: Any = None) -> SpendReport:
    """Live resources across providers, their hourly cost now and what they have cost since creation."""
    resources, statuses = await _live_at_providers(tk, data.provider)
    live = await tk.journal.aio.live()
    journal = {(e.provider, e.resource_id): e for e in live if e.resource_id}
    created = await tk.journal.aio.created_among({(r.provider, r.resource_id) for r in resources})
    now = tk.now()
    mine = [e for e in live if data.provider is None or e.provider == data.provider]
    lines = [_unresolved_line(e, now) for e in mine if e.resource_id is None]
    lines += [
        _resource_line(
            r, journal.get((r.provider, r.resource_id)), (r.provider, r.resource_id) in created, now
        )
        for r in resources
    ]
    by_provider = _by_provider(lines)
    notes = ["accrued_usd assumes each resource ran at today's rate since creation: an upper bound."]
    unknown = [line.resource_id for line in lines if line.usd_per_hour is None]
    if unknown:
        notes.append(
            f"no price known for: {', '.join(unknown)}; left out of the totals and of the budgets' "
            "committed_usd, which are lower than the truth. With a total cap or a budget set, a change "
            "that raises the hourly cost is refused until each is priced, stopped or deleted."
        )
    notes.append(f"Approval policy: {tk.approvals.policy_text()}.")
    over = getattr(data, "over", None)
    return SpendReport(
        history_over=over,
        history=await _history(tk, over, data.provider, now) if over else [],
        items=lines,
        by_provider=by_provider,
        total_usd_per_hour=round(sum(p.usd_per_hour for p in by_provider), 4),
        total_accrued_usd=round(sum(p.accrued_usd for p in by_provider), 4),
        providers=statuses,
        notes=notes,
        budgets=await tk.journal.aio.run(
            lambda: budget.report(tk.journal, tk.settings, tk.journal.first_at(), now)
        ),
        expiries=_expiries(mine)[:10],
        guard=await tk.journal.aio.run(guard_status, tk, now),
    )


def _hours_since(since: datetime | None, now: datetime) -> float | None:
    return round((now - since).total_seconds() / 3600, 4) if since else None


def _unresolved_line(e: LiveEntry, now: datetime) -> SpendLine:
    """A create whose answer was lost counts at its planned cost until reconciliation resolves it."""
    hours = _hours_since(parse_time(e.created_at), now)
    return SpendLine(
        provider=e.provider,
        resource_id=f"journal#{e.journal_id}",
        name=e.name,
        kind=e.kind,
        status="unknown",
        usd_per_hour=e.usd_per_hour,
        price_source="journal (planned; the create's outcome is unknown)",
        since=e.created_at,
        hours=hours,
        accrued_usd=round(e.usd_per_hour * hours, 4)
        if e.usd_per_hour is not None and hours is not None
        else None,
        expires_at=e.expires_at,
        tracked=True,
    )


def _resource_line(r: Resource, entry: LiveEntry | None, tracked: bool, now: datetime) -> SpendLine:
    """A resource the provider listed: its rate (the provider's, else the one journaled at creation;
    nothing while it does not bill) and what it has cost since it was created."""
    rate, source = (r.usd_per_hour, "provider") if r.usd_per_hour is not None else (None, None)
    if rate is None and entry is not None and entry.usd_per_hour is not None:
        rate, source = entry.usd_per_hour, "journal"
    since = parse_time(entry.created_at if entry else None) or parse_time(r.created_at)
    hours = _hours_since(since, now)
    return SpendLine(
        provider=r.provider,
        resource_id=r.resource_id,
        name=r.name,
        kind=r.kind,
        status=r.status,
        usd_per_hour=(rate if r.status in BILLING_STATUSES else 0.0) if rate is not None else None,
        price_source=source,
        since=since.isoformat(timespec="seconds") if since else None,
        hours=hours,
        accrued_usd=round(rate * hours, 4) if rate is not None and hours is not None else None,
        expires_at=entry.expires_at if entry else None,
        tracked=tracked,
    )


def _by_provider(lines: list[SpendLine]) -> list[ProviderSpend]:
    out = []
    for name in dict.fromkeys(line.provider for line in lines):
        mine = [line for line in lines if line.provider == name]
        out.append(
            ProviderSpend(
                provider=name,
                resources=len(mine),
                usd_per_hour=round(sum(line.usd_per_hour or 0.0 for line in mine), 4),
                accrued_usd=round(sum(line.accrued_usd or 0.0 for line in mine), 4),
            )
        )
    return out


def _expiries(live: list[LiveEntry]) -> list[Expiry]:
    """The live entries that expire, soonest first."""
    return sorted(
        (
            Expiry(
                provider=e.provider,
                resource_id=e.resource_id,
                name=e.name,
                expires_at=e.expires_at,
                action=e.expires_action,
            )
            for e in live
            if e.expires_at
        ),
        key=lambda x: x.expires_at,
    )


async def _history(tk: Context, over: str, provider: str | None, now: datetime) -> list[SpendPoint]:
    """Spend over time for the past period `over`, replayed from the journal's billing rows."""
    from gpu_tools.durations import parse_duration
    from gpu_tools.spend_history import spend_series

    rows = await tk.journal.aio.run(tk.journal.billing_rows)
    return spend_series(rows, now - parse_duration(over), now, provider)


GUARD_LAST_PASS = "guard_last_pass"
GUARD_INTERVAL = "guard_interval"


def guard_status(tk: Context, now: datetime) -> GuardStatus:
    """When gpu-guard last made a pass (it writes a heartbeat to the journal), and whether it looks
    alive: three intervals without a pass means it is not running."""
    last = tk.journal.meta(GUARD_LAST_PASS)
    interval = float(tk.journal.meta(GUARD_INTERVAL) or tk.settings.guard_interval)
    if last is None:
        return GuardStatus(
            running=False,
            interval_seconds=interval,
            message="gpu-guard has never run against this journal: expiries and budgets are enforced only "
            "when someone calls a tool. Run gpu-guard (see the README).",
        )
    age = (now - datetime.fromisoformat(last)).total_seconds()
    running = age <= 3 * interval
    return GuardStatus(
        last_pass=last,
        interval_seconds=interval,
        running=running,
        message=f"gpu-guard last ran {age:.0f} s ago"
        + ("." if running else f", more than three intervals ({3 * interval:g} s): it is not running."),
    )


async def find_orphans(tk: Context, data: ProviderFilter, progress: Any = None) -> OrphanReport:
    """Live at a provider but not live in the journal (made elsewhere, or deleted here yet still
    there); live in the journal but gone from a provider that answered in full. One journal read."""
    resources, statuses = await _live_at_providers(tk, data.provider)
    answered = {s.provider for s in statuses if s.status == "ok"}
    live = await tk.journal.aio.live()
    tracked = {(e.provider, e.resource_id) for e in live}
    listed = {(r.provider, r.resource_id) for r in resources}
    untracked = [r for r in resources if (r.provider, r.resource_id) not in tracked]
    gone = [
        e
        for e in live
        if e.resource_id is not None
        and e.provider in answered
        and (data.provider is None or e.provider == data.provider)
        and (e.provider, e.resource_id) not in listed
    ]
    return OrphanReport(
        untracked=untracked,
        gone=gone,
        untracked_usd_per_hour=round(sum(r.usd_per_hour or 0.0 for r in untracked), 4),
        providers=statuses,
    )
