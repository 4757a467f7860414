"""The unified operations: one tool for every provider, dispatched to the adapters.

Their inputs and the `Operation` declaration live in `gpu_tools.operations`; their handlers and
planners live here, above the catalog and the providers. The toolkit assembles these and every
provider's own operations into the one registry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel

from gpu_tools.catalog import filter_offers, find_orphans, journal_costs, spend
from gpu_tools.errors import GpuToolsError, InvalidInput, NotFound, WaitTimeout
from gpu_tools.models import (
    ChatResult,
    JournalEntry,
    Listing,
    Offer,
    OrphanReport,
    Plan,
    PriceHistory,
    ProviderListing,
    ReconcileReport,
    Region,
    Resource,
    SpendReport,
    Template,
    WaitResult,
)
from gpu_tools.operations import (
    ChatInput,
    DeleteInput,
    GetResourceInput,
    HistoryInput,
    ListInput,
    ListOffersInput,
    ListResourcesInput,
    NoInput,
    Operation,
    PriceHistoryInput,
    Progress,
    ProviderFilter,
    ReapInput,
    SpendInput,
    StartInput,
    StopInput,
    UpdateInput,
    WaitInput,
)
from gpu_tools.price_history import price_history
from gpu_tools.reconcile import pending_rows, reconcile

if TYPE_CHECKING:
    from gpu_tools.context import Context


# ---- handlers of the unified reads ----------------------------------------------------------
async def _list_providers(tk: Context, data: NoInput, progress: Progress | None) -> ProviderListing:
    return tk.provider_listing()


async def _list_offers(tk: Context, data: ListOffersInput, progress: Progress | None) -> Listing[Offer]:
    offers, statuses = await tk.fan_out(
        "offers", data.provider, lambda p: tk.offers(p, data.refresh), progress
    )
    offers = filter_offers(offers, data)
    return Listing[Offer](items=offers, total=len(offers), providers=statuses)


async def _list_templates(tk: Context, data: ListInput, progress: Progress | None) -> Listing[Template]:
    items, statuses = await tk.fan_out("templates", data.provider, lambda p: p.list_templates(), progress)
    return Listing[Template](items=items, total=len(items), providers=statuses)


async def _list_regions(tk: Context, data: ListInput, progress: Progress | None) -> Listing[Region]:
    items, statuses = await tk.fan_out("regions", data.provider, lambda p: p.list_regions(), progress)
    return Listing[Region](items=items, total=len(items), providers=statuses)


async def _list_resources(
    tk: Context, data: ListResourcesInput, progress: Progress | None
) -> Listing[Resource]:
    items, statuses = await tk.fan_out("resources", data.provider, tk.resources, progress)
    if data.status:
        items = [r for r in items if r.status == data.status]
    journal_costs(tk, items)
    return Listing[Resource](items=items, total=len(items), providers=statuses)


async def _get_resource(tk: Context, data: GetResourceInput, progress: Progress | None) -> Resource:
    adapter = tk.adapter(data.provider, "resources")
    resource = await adapter.get_resource(data.resource_id, reveal_secrets=data.reveal_secrets)
    journal_costs(tk, [resource])
    return resource


# The wait's clock and sleep, replaceable together in tests (with the sandbox's clock) so that a
# wait of minutes runs in no time and no test depends on how fast the machine is.
clock: Callable[[], float] = time.monotonic
sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
# Extra time one look at the resource may take past the deadline before the call answers anyway.
POLL_GRACE_SECONDS = 5.0


async def _wait_for_resource(tk: Context, data: WaitInput, progress: Progress | None) -> WaitResult:
    """Look at the resource every poll_seconds until it reaches `until` or timeout_seconds pass; then
    answer with its current state either way (`reached` says which), so no call outlives its client."""
    adapter = tk.adapter(data.provider, "resources")
    start = clock()
    deadline = start + data.timeout_seconds
    last: Resource | None = None

    def result(resource: Resource, reached: bool, note: str | None = None) -> WaitResult:
        waited = round(clock() - start, 1)
        journal_costs(tk, [resource])
        return WaitResult(
            **{**resource.model_dump(), "reached": reached, "waited_seconds": waited, "note": note}
        )

    while True:
        try:
            budget = max(deadline - clock(), 0.0) + POLL_GRACE_SECONDS
            last = await asyncio.wait_for(adapter.get_resource(data.resource_id), budget)
        except NotFound:
            if data.until == "deleted":
                gone = Resource(
                    provider=data.provider,
                    kind=last.kind if last else "endpoint",
                    resource_id=data.resource_id,
                    status="deleting",
                    raw_status="gone",
                    name=last.name if last else None,
                )
                return result(gone, True)
            raise
        except TimeoutError:
            if last is None:
                raise WaitTimeout(
                    f"{data.provider} did not answer about {data.resource_id} within "
                    f"{data.timeout_seconds + POLL_GRACE_SECONDS:g}s.",
                    provider=data.provider,
                    hint="Call wait_for_resource again to keep waiting.",
                ) from None
            return result(last, False, _not_yet(data, last, clock() - start))
        elapsed = clock() - start
        if progress is not None:
            await progress(
                min(elapsed, data.timeout_seconds),
                data.timeout_seconds,
                f"{data.resource_id}: {last.status} ({last.raw_status}) after {elapsed:.0f}s",
            )
        if data.until != "deleted" and last.status == data.until:
            return result(last, True)
        if last.status == "failed":
            raise InvalidInput(
                f"{data.resource_id} failed (provider status {last.raw_status!r}) while waiting for {data.until}.",
                provider=data.provider,
            )
        remaining = deadline - clock()
        if remaining <= 0:
            return result(last, False, _not_yet(data, last, clock() - start))
        await sleep(min(data.poll_seconds, remaining))


def _not_yet(data: WaitInput, last: Resource, elapsed: float) -> str:
    return (
        f"Not {data.until} yet after {round(elapsed, 1):g}s: {data.resource_id} is {last.status} (provider status "
        f"{last.raw_status!r}). Call wait_for_resource again with the same arguments to keep waiting."
    )


async def _history(tk: Context, data: HistoryInput, progress: Progress | None) -> Listing[JournalEntry]:
    await tk.journal.aio.settle_unanswered()  # questions a client never answered are refusals by now
    items, total = await tk.journal.aio.entries(
        limit=data.limit, provider=data.provider, outcome=data.outcome, user=data.user
    )
    return Listing[JournalEntry](items=items, total=total)


async def _chat(tk: Context, data: ChatInput, progress: Progress | None) -> ChatResult:
    return await tk.adapter(data.provider, "chat").chat(data)


async def _plan_update(tk: Context, data: UpdateInput) -> Plan:
    fields = ("replicas", "min_replicas", "max_replicas", "name", "description", "gpu_type", "gpu_count")
    if all(getattr(data, f) is None for f in fields):
        raise InvalidInput("update_resource: give at least one of " + ", ".join(fields) + ".")
    if (
        data.min_replicas is not None
        and data.max_replicas is not None
        and data.min_replicas > data.max_replicas
    ):
        raise InvalidInput("update_resource: min_replicas is larger than max_replicas.")
    return await tk.adapter(data.provider, "update").plan_update(data)


async def _plan_stop(tk: Context, data: StopInput) -> Plan:
    adapter = tk.adapter(data.provider, "stop")
    given = [f for f in StopInput.snapshot_fields if getattr(data, f) is not None]
    if given and "stop_snapshot" not in adapter.capabilities:
        able = [a.title for a in tk.adapters.values() if "stop_snapshot" in a.capabilities]
        raise InvalidInput(
            f"stop_resource: {adapter.title} does not accept {', '.join(given)}; only "
            f"{', '.join(able)} can power off with a grace period or a snapshot. Nothing was sent.",
            provider=data.provider,
        )
    return await adapter.plan_stop(data)


async def _plan_start(tk: Context, data: StartInput) -> Plan:
    return await tk.adapter(data.provider, "start").plan_start(data.resource_id)


async def _plan_delete(tk: Context, data: DeleteInput) -> Plan:
    return await tk.adapter(data.provider, "delete").plan_delete(data.resource_id)


async def _plan_reap(tk: Context, data: ReapInput) -> Plan:
    """One step per expired resource the journal knows; each step is the provider's own plan."""
    now = tk.now()
    expired = [
        e
        for e in await tk.journal.aio.live()
        if e.expires_at
        and datetime.fromisoformat(e.expires_at) <= now
        and (data.provider is None or e.provider == data.provider)
        and not ((data.action or e.expires_action) == "stop" and e.stopped)
    ]
    steps: list[Plan] = []
    warnings: list[str] = []
    for entry in expired:
        if entry.resource_id is None:
            warnings.append(
                f"{entry.provider} {entry.name} (journal #{entry.journal_id}) skipped: its create's outcome is "
                "unknown; reconcile first."
            )
            continue
        action = data.action or entry.expires_action
        try:
            adapter = tk.adapter(entry.provider, action)
            if action == "delete":
                steps.append(await adapter.plan_delete(entry.resource_id))
            else:
                ref = StopInput(provider=entry.provider, resource_id=entry.resource_id)  # type: ignore[arg-type]
                steps.append(await adapter.plan_stop(ref))
        except NotFound:
            warnings.append(f"{entry.provider} {entry.resource_id} is already gone (see find_orphans).")
        except GpuToolsError as exc:
            warnings.append(f"{entry.provider} {entry.resource_id} skipped: {exc}")
    providers = sorted({s.provider for s in steps})
    deletes = [s for s in steps if s.operation == "delete_resource"]
    verb = "Delete" if len(deletes) == len(steps) else ("Stop" if not deletes else "Delete or stop")
    names = ", ".join(f"{s.provider}:{s.target}" for s in steps)
    plan = Plan(
        provider=providers[0] if len(providers) == 1 else ("several" if providers else "none"),
        operation="reap_expired",
        action=f"{verb} {len(steps)} expired resource(s)"
        + (f": {names}." if steps else ": nothing has expired."),
        target=names or "nothing",
        method="(one request per step)" if steps else "(none)",
        path="",
        usd_per_hour=None,
        reversible=not deletes,
        reversibility="stopped resources can be started again."
        if not deletes
        else "deleting is permanent for every resource deleted.",
        steps=steps,
        warnings=warnings,
        nothing_to_do=None if steps else "Nothing has expired.",
        sandbox=tk.settings.sandbox,
    )
    return plan


async def _spend_handler(tk: Context, data: SpendInput, progress: Progress | None) -> BaseModel:
    if await tk.journal.aio.run(pending_rows, tk, data.provider):
        await reconcile(tk, data.provider)  # what was lost in flight is found before it is priced
    return await spend(tk, data)


async def _find_orphans_handler(tk: Context, data: ProviderFilter, progress: Progress | None) -> BaseModel:
    if await tk.journal.aio.run(pending_rows, tk, data.provider):
        await reconcile(tk, data.provider)
    return await find_orphans(tk, data)


async def _reconcile_handler(tk: Context, data: ProviderFilter, progress: Progress | None) -> ReconcileReport:
    return await reconcile(tk, data.provider)


CORE_OPERATIONS = [
    Operation(
        name="list_providers",
        title="List GPU providers",
        description="The providers: credentials, capabilities, own tools; which tool sets are listed and how to "
        "turn on others. Start here.",
        input=NoInput,
        output=ProviderListing,
        effect="read",
        handler=_list_providers,
        aliases=("providers",),
        open_world=False,
    ),
    Operation(
        name="list_offers",
        title="List GPU offers",
        description="What can be rented (GPU flavors, machines, SKUs) at every provider: GPU, count, memory, region, "
        "USD per hour, cheapest per GPU-hour first. A failing provider does not hide the others.",
        input=ListOffersInput,
        output=Listing[Offer],
        effect="read",
        handler=_list_offers,
        aliases=("offers",),
    ),
    Operation(
        name="price_history",
        title="Price history of a GPU",
        description="A GPU model's prices over a past period, per offer (provider, count, region): each price "
        "from first to last seen, recorded whenever offers are fetched.",
        input=PriceHistoryInput,
        output=PriceHistory,
        effect="read",
        handler=price_history,
        aliases=("prices",),
    ),
    Operation(
        name="list_templates",
        title="List model templates",
        description="Model templates (or images) to create resources from: flavors, GPU types, GPU counts, "
        "regions.",
        input=ListInput,
        output=Listing[Template],
        effect="read",
        handler=_list_templates,
        aliases=("templates",),
    ),
    Operation(
        name="list_regions",
        title="List regions",
        description="List the regions each provider can place resources in.",
        input=ListInput,
        output=Listing[Region],
        effect="read",
        handler=_list_regions,
        aliases=("regions",),
    ),
    Operation(
        name="list_resources",
        title="List my GPU resources",
        description="Live endpoints, containers and instances at every configured provider: status (normalized "
        "and raw), GPU, replicas, URL. Its resource_id works in every lifecycle tool.",
        input=ListResourcesInput,
        output=Listing[Resource],
        effect="read",
        handler=_list_resources,
        aliases=("ls", "resources"),
    ),
    Operation(
        name="get_resource",
        title="Get one resource",
        description="Read one resource: status, GPU, replicas, URL and the provider's details. Secrets are masked "
        "unless reveal_secrets is true.",
        input=GetResourceInput,
        output=Resource,
        effect="read",
        handler=_get_resource,
        aliases=("get",),
    ),
    Operation(
        name="wait_for_resource",
        title="Wait for a resource",
        description="Poll a resource until it is running (or stopped, or deleted), with progress. reached=false "
        "after timeout_seconds: call again to keep waiting. Fails early if the resource fails.",
        input=WaitInput,
        output=WaitResult,
        effect="read",
        handler=_wait_for_resource,
        aliases=("wait",),
    ),
    Operation(
        name="history",
        title="Journal of changes",
        description="The journal: every change this tool attempted at a provider, newest first: plan, cost, "
        "outcome (unknown: the answer was lost), resource made.",
        input=HistoryInput,
        output=Listing[JournalEntry],
        effect="read",
        handler=_history,
        open_world=False,
    ),
    Operation(
        name="spend",
        title="What is running and what it costs",
        description="Every live resource with its cost per hour now and since creation (an upper bound), totals per "
        "provider and overall, and when each expires: what is burning money.",
        input=SpendInput,
        output=SpendReport,
        effect="read",
        handler=_spend_handler,
    ),
    Operation(
        name="find_orphans",
        title="Find forgotten or vanished resources",
        description="Live resources this tool never created (with their cost per hour), and ones it created "
        "that the provider no longer lists.",
        input=ProviderFilter,
        output=OrphanReport,
        effect="read",
        handler=_find_orphans_handler,
        aliases=("orphans",),
    ),
    Operation(
        name="reconcile",
        title="Resolve changes whose answer was lost",
        description="Settle journaled changes whose answer was lost against what the providers hold: found "
        "becomes ok, missing failed. Nothing is resent. Also runs before caps, spend and find_orphans.",
        input=ProviderFilter,
        output=ReconcileReport,
        effect="read",
        handler=_reconcile_handler,
    ),
    Operation(
        name="chat",
        title="Chat with an endpoint",
        description="Send one chat message to a running inference endpoint (OpenAI-compatible chat completions) "
        "and return the answer.",
        input=ChatInput,
        output=ChatResult,
        effect="read",
        handler=_chat,
    ),
    Operation(
        name="update_resource",
        title="Update or scale a resource",
        description="Scale (replicas, or min/max for autoscaling), rename, or change GPU type/count where the "
        "provider allows; the plan shows the new hourly cost. Scaling down can lose the removed replicas' state.",
        input=UpdateInput,
        effect="update",
        planner=_plan_update,
        aliases=("scale", "update"),
    ),
    Operation(
        name="stop_resource",
        title="Stop a resource",
        description="Stop it so its GPUs cost nothing; start_resource starts it again. What is not on disk "
        "(memory, processes) is lost.",
        input=StopInput,
        effect="update",
        planner=_plan_stop,
        aliases=("stop",),
    ),
    Operation(
        name="start_resource",
        title="Start a resource",
        description="Start (or restart) a stopped resource. It costs money again once running.",
        input=StartInput,
        effect="update",
        planner=_plan_start,
        destructive=False,
        aliases=("start",),
    ),
    Operation(
        name="reap_expired",
        title="Stop or delete expired resources",
        description="Delete (or with action=stop, stop) the resources whose expires_in is up, in one plan.",
        input=ReapInput,
        effect="destroy",
        planner=_plan_reap,
        aliases=("reap",),
    ),
    Operation(
        name="delete_resource",
        title="Delete a resource",
        description="Delete a resource permanently. This cannot be undone.",
        input=DeleteInput,
        effect="destroy",
        planner=_plan_delete,
        aliases=("rm", "delete"),
    ),
]
