"""THE registry: every operation declared once, with its effect.

An operation is a name, a description written for an LLM reader, an input model, an output model
and an effect (`read`, `create`, `update`, `destroy`). Both fronts iterate `registry()`: a new
operation here (or in a provider file's `operations`) is a new MCP tool and a new `%gpu`
subcommand, with no front-end code. Reads run `handler`; mutations run `planner` and go through
the gate (`gpu_tools.gate`).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gpu_tools.errors import InvalidInput, UnknownOperation, WaitTimeout
from gpu_tools.models import (
    ChatResult,
    Effect,
    JournalEntry,
    Kind,
    Listing,
    MutationResult,
    Offer,
    OrphanReport,
    Plan,
    ProviderInfo,
    ProviderName,
    Region,
    Resource,
    SpendReport,
    Template,
)

if TYPE_CHECKING:
    from gpu_tools.toolkit import Toolkit

Progress = Callable[[float, float | None, str], Awaitable[None]]
DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")


# ---- inputs ---------------------------------------------------------------------------------
class OpInput(BaseModel):
    """Base of every operation's input. `positional` names the fields a magic takes positionally."""

    model_config = ConfigDict(extra="forbid")
    positional: ClassVar[tuple[str, ...]] = ()


class MutationInput(OpInput):
    dry_run: bool = Field(
        False, description="Return the plan (request, cost, reversibility) and send nothing."
    )


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `2h`, `1.5d`, `1w` -> timedelta."""
    match = DURATION.fullmatch(text.strip().lower())
    if not match:
        raise ValueError("use a number and a unit: s, m, h, d or w (e.g. 2h)")
    value, unit = float(match.group(1)), match.group(2)
    return timedelta(seconds=value * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit])


class CreateInput(MutationInput):
    expires_in: str | None = Field(
        None,
        description="Optional lifetime such as 2h or 3d: after it, reap_expired stops or deletes the resource.",
    )
    idempotency_key: str | None = Field(
        None,
        description="Any string unique to this intent. Repeating a call with the same key returns the "
        "first result instead of creating a second resource.",
        max_length=200,
    )

    @field_validator("expires_in")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and parse_duration(value) <= timedelta(0):
            raise ValueError("must be positive")
        return value


class ProviderFilter(OpInput):
    provider: ProviderName | None = Field(None, description="Only this provider (default: all configured).")


class ResourceRef(OpInput):
    positional: ClassVar[tuple[str, ...]] = ("provider", "resource_id")
    provider: ProviderName = Field(description="The provider that holds the resource.")
    resource_id: str = Field(
        description="The resource_id exactly as list_resources returned it.", min_length=1
    )


class NoInput(OpInput):
    pass


class ListOffersInput(ProviderFilter):
    kind: Kind | None = Field(None, description="endpoint, container or instance.")
    gpu: str | None = Field(None, description="GPU model or the provider's GPU name, case-insensitive.")
    region: str | None = None
    min_gpu_count: int | None = Field(None, ge=1)
    min_gpu_memory_gb: float | None = Field(None, gt=0)
    max_usd_per_gpu_hour: float | None = Field(None, gt=0)
    available_only: bool = False
    refresh: bool = Field(
        False, description="Ask the providers again instead of using offers cached minutes ago."
    )


class ListResourcesInput(ProviderFilter):
    status: Literal["pending", "running", "stopped", "failed", "deleting", "unknown"] | None = None


class GetResourceInput(ResourceRef):
    reveal_secrets: bool = Field(
        False, description="Show passwords and tokens the provider returns (masked by default)."
    )


class WaitInput(ResourceRef):
    until: Literal["running", "stopped", "deleted"] = Field("running", description="The state to wait for.")
    timeout_seconds: float = Field(600, gt=0, le=3600, description="Give up after this long.")
    poll_seconds: float = Field(5, ge=0.05, le=60)


class HistoryInput(OpInput):
    limit: int = Field(50, ge=1, le=1000)
    provider: ProviderName | None = None
    outcome: Literal["unknown", "ok", "failed", "refused"] | None = None


class ChatInput(ResourceRef):
    message: str = Field(description="The user message to send.", min_length=1)
    system: str | None = Field(None, description="Optional system prompt.")
    max_tokens: int = Field(256, ge=1, le=32768)
    temperature: float | None = Field(None, ge=0, le=2)


class UpdateInput(ResourceRef, MutationInput):
    replicas: int | None = Field(None, ge=0, description="Fixed number of replicas / instances.")
    min_replicas: int | None = Field(None, ge=0)
    max_replicas: int | None = Field(None, ge=1)
    name: str | None = None
    description: str | None = None
    gpu_type: str | None = None
    gpu_count: int | None = Field(None, ge=1)


class StopInput(ResourceRef, MutationInput):
    grace_period_seconds: int | None = Field(
        None,
        ge=0,
        le=3600,
        description="NeoLink only: seconds processes get to exit before the instance is forced off "
        "(default 10). Other providers refuse it.",
    )
    snapshot_image_name: str | None = Field(
        None,
        min_length=1,
        description="NeoLink only: save the instance as an image with this name while powering off. "
        "Other providers refuse it.",
    )
    snapshot_tag: str | None = Field(
        None,
        min_length=1,
        description="NeoLink only: version tag of the snapshot image (needs snapshot_image_name).",
    )

    # Arguments only providers with the "stop_snapshot" capability accept.
    snapshot_fields: ClassVar[tuple[str, ...]] = (
        "grace_period_seconds",
        "snapshot_image_name",
        "snapshot_tag",
    )


class StartInput(ResourceRef, MutationInput):
    pass


class DeleteInput(ResourceRef, MutationInput):
    pass


class ReapInput(MutationInput):
    action: Literal["delete", "stop"] = Field(
        "delete", description="What to do with each expired resource: delete it, or only stop it."
    )
    provider: ProviderName | None = Field(None, description="Only this provider's resources.")


# ---- the registry ---------------------------------------------------------------------------
Handler = Callable[["Toolkit", Any, Progress | None], Awaitable[BaseModel]]
Planner = Callable[["Toolkit", Any], Awaitable[Plan]]


@dataclass(frozen=True)
class Operation:
    name: str
    title: str
    description: str
    input: type[OpInput]
    effect: Effect
    output: type[BaseModel] = MutationResult
    handler: Handler | None = None
    planner: Planner | None = None
    aliases: tuple[str, ...] = ()
    provider: str | None = None
    open_world: bool = True
    examples: tuple[str, ...] = field(default=())

    @property
    def mutating(self) -> bool:
        return self.effect != "read"

    def parse(self, args: dict[str, Any] | None) -> Any:
        try:
            return self.input.model_validate(args or {})
        except ValidationError as exc:
            raise InvalidInput(f"{self.name}: {short_validation_message(exc)}") from None


def short_validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "input"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown argument"
        elif err["type"] == "literal_error" and "expected" in err.get("ctx", {}):
            msg = f"must be one of {err['ctx']['expected']}"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


class Registry:
    def __init__(self, operations: list[Operation]) -> None:
        self._ops: dict[str, Operation] = {}
        for op in operations:
            if op.name in self._ops:
                raise ValueError(f"operation {op.name} declared twice")
            self._ops[op.name] = op

    def __iter__(self):
        return iter(self._ops.values())

    def names(self) -> list[str]:
        return list(self._ops)

    def get(self, name: str) -> Operation:
        try:
            return self._ops[name]
        except KeyError:
            raise UnknownOperation(f"no operation named {name!r}") from None


# ---- handlers of the unified reads ----------------------------------------------------------
async def _list_providers(tk: Toolkit, data: NoInput, progress: Progress | None) -> Listing[ProviderInfo]:
    items = tk.provider_infos()
    return Listing[ProviderInfo](items=items, total=len(items))


async def _list_offers(tk: Toolkit, data: ListOffersInput, progress: Progress | None) -> Listing[Offer]:
    from gpu_tools.catalog import filter_offers

    offers, statuses = await tk.fan_out("offers", data.provider, lambda p: tk.offers(p, data.refresh))
    offers = filter_offers(offers, data)
    return Listing[Offer](items=offers, total=len(offers), providers=statuses)


async def _list_templates(tk: Toolkit, data: ProviderFilter, progress: Progress | None) -> Listing[Template]:
    items, statuses = await tk.fan_out("templates", data.provider, lambda p: p.list_templates())
    return Listing[Template](items=items, total=len(items), providers=statuses)


async def _list_regions(tk: Toolkit, data: ProviderFilter, progress: Progress | None) -> Listing[Region]:
    items, statuses = await tk.fan_out("regions", data.provider, lambda p: p.list_regions())
    return Listing[Region](items=items, total=len(items), providers=statuses)


async def _list_resources(
    tk: Toolkit, data: ListResourcesInput, progress: Progress | None
) -> Listing[Resource]:
    items, statuses = await tk.fan_out("resources", data.provider, lambda p: p.list_resources())
    if data.status:
        items = [r for r in items if r.status == data.status]
    return Listing[Resource](items=items, total=len(items), providers=statuses)


async def _get_resource(tk: Toolkit, data: GetResourceInput, progress: Progress | None) -> Resource:
    adapter = tk.adapter(data.provider, "resources")
    return await adapter.get_resource(data.resource_id, reveal_secrets=data.reveal_secrets)


async def _wait_for_resource(tk: Toolkit, data: WaitInput, progress: Progress | None) -> Resource:
    from gpu_tools.errors import NotFound

    adapter = tk.adapter(data.provider, "resources")
    start = time.monotonic()
    last: Resource | None = None
    while True:
        elapsed = time.monotonic() - start
        try:
            last = await adapter.get_resource(data.resource_id)
        except NotFound:
            if data.until == "deleted":
                return Resource(
                    provider=data.provider,
                    kind=last.kind if last else "endpoint",
                    resource_id=data.resource_id,
                    status="deleting",
                    raw_status="gone",
                    name=last.name if last else None,
                )
            raise
        if progress is not None:
            await progress(
                min(elapsed, data.timeout_seconds),
                data.timeout_seconds,
                f"{data.resource_id}: {last.status} ({last.raw_status}) after {elapsed:.0f}s",
            )
        if data.until != "deleted" and last.status == data.until:
            return last
        if last.status == "failed":
            raise InvalidInput(
                f"{data.resource_id} failed (provider status {last.raw_status!r}) while waiting for {data.until}.",
                provider=data.provider,
            )
        if elapsed + data.poll_seconds > data.timeout_seconds:
            raise WaitTimeout(
                f"{data.resource_id} is still {last.status} ({last.raw_status}) after "
                f"{elapsed:.0f}s; waiting for {data.until}.",
                provider=data.provider,
                hint="Call wait_for_resource again to keep waiting.",
            )
        await asyncio.sleep(data.poll_seconds)


async def _history(tk: Toolkit, data: HistoryInput, progress: Progress | None) -> Listing[JournalEntry]:
    items, total = tk.journal.entries(limit=data.limit, provider=data.provider, outcome=data.outcome)
    return Listing[JournalEntry](items=items, total=total)


async def _chat(tk: Toolkit, data: ChatInput, progress: Progress | None) -> ChatResult:
    return await tk.adapter(data.provider, "chat").chat(data)


async def _plan_update(tk: Toolkit, data: UpdateInput) -> Plan:
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


async def _plan_stop(tk: Toolkit, data: StopInput) -> Plan:
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


async def _plan_start(tk: Toolkit, data: StartInput) -> Plan:
    return await tk.adapter(data.provider, "start").plan_start(data.resource_id)


async def _plan_delete(tk: Toolkit, data: DeleteInput) -> Plan:
    return await tk.adapter(data.provider, "delete").plan_delete(data.resource_id)


async def _plan_reap(tk: Toolkit, data: ReapInput) -> Plan:
    """One step per expired resource the journal knows; each step is the provider's own plan."""
    from datetime import UTC, datetime

    from gpu_tools.errors import GpuToolsError, NotFound

    now = datetime.now(UTC)
    expired = [
        e
        for e in tk.journal.live()
        if e.expires_at
        and datetime.fromisoformat(e.expires_at) <= now
        and (data.provider is None or e.provider == data.provider)
    ]
    steps: list[Plan] = []
    warnings: list[str] = []
    for entry in expired:
        try:
            adapter = tk.adapter(entry.provider, data.action)
            if data.action == "delete":
                steps.append(await adapter.plan_delete(entry.resource_id))
            else:
                ref = StopInput(provider=entry.provider, resource_id=entry.resource_id)  # type: ignore[arg-type]
                steps.append(await adapter.plan_stop(ref))
        except NotFound:
            warnings.append(f"{entry.provider} {entry.resource_id} is already gone (see find_orphans).")
        except GpuToolsError as exc:
            warnings.append(f"{entry.provider} {entry.resource_id} skipped: {exc}")
    providers = sorted({s.provider for s in steps})
    verb = "Delete" if data.action == "delete" else "Stop"
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
        reversible=data.action == "stop",
        reversibility="stopped resources can be started again."
        if data.action == "stop"
        else "deleting is permanent for every resource listed.",
        steps=steps,
        warnings=warnings,
        sandbox=tk.settings.sandbox,
    )
    return plan


async def _spend(tk: Toolkit, data: ProviderFilter, progress: Progress | None) -> BaseModel:
    from gpu_tools.catalog import spend

    return await spend(tk, data)


async def _find_orphans(tk: Toolkit, data: ProviderFilter, progress: Progress | None) -> BaseModel:
    from gpu_tools.catalog import find_orphans

    return await find_orphans(tk, data)


CORE_OPERATIONS = [
    Operation(
        name="list_providers",
        title="List GPU providers",
        description="List the GPU cloud providers this server knows, whether each has credentials, its base "
        "URL and what it can do (offers, templates, regions, resources, update, stop, start, delete, chat), "
        "and the provider-specific tools it adds. Start here.",
        input=NoInput,
        output=Listing[ProviderInfo],
        effect="read",
        handler=_list_providers,
        aliases=("providers",),
        open_world=False,
    ),
    Operation(
        name="list_offers",
        title="List GPU offers",
        description="List what can be rented (GPU flavors, machines, SKUs) across providers, with GPU, count, "
        "memory, region, price and USD per hour, cheapest USD per GPU-hour first. Filter by provider, kind, "
        "GPU, region, GPU count or memory, max USD per GPU-hour, availability. Each provider's answer is "
        "reported separately, so one failing provider does not hide the others.",
        input=ListOffersInput,
        output=Listing[Offer],
        effect="read",
        handler=_list_offers,
        aliases=("offers",),
    ),
    Operation(
        name="list_templates",
        title="List model templates",
        description="List the model templates (or images) resources can be created from, with their flavors, "
        "GPU types, GPU counts and regions.",
        input=ProviderFilter,
        output=Listing[Template],
        effect="read",
        handler=_list_templates,
        aliases=("templates",),
    ),
    Operation(
        name="list_regions",
        title="List regions",
        description="List the regions each provider can place resources in.",
        input=ProviderFilter,
        output=Listing[Region],
        effect="read",
        handler=_list_regions,
        aliases=("regions",),
    ),
    Operation(
        name="list_resources",
        title="List my GPU resources",
        description="List the live resources (endpoints, containers, instances) at every configured provider, "
        "with normalized status (pending, running, stopped, failed, deleting, unknown), the provider's raw "
        "status, GPU, replicas and URL. The resource_id it returns works as-is in every lifecycle tool.",
        input=ListResourcesInput,
        output=Listing[Resource],
        effect="read",
        handler=_list_resources,
        aliases=("ls", "resources"),
    ),
    Operation(
        name="get_resource",
        title="Get one resource",
        description="Read one resource by provider and resource_id: status, GPU, replicas, URL and the "
        "provider's details. Secrets the provider returns are masked unless reveal_secrets is true.",
        input=GetResourceInput,
        output=Resource,
        effect="read",
        handler=_get_resource,
        aliases=("get",),
    ),
    Operation(
        name="wait_for_resource",
        title="Wait for a resource",
        description="Poll a resource until it is running (or stopped, or deleted), reporting progress, and "
        "return it. Fails early if the resource fails; gives up after timeout_seconds (max 3600).",
        input=WaitInput,
        output=Resource,
        effect="read",
        handler=_wait_for_resource,
        aliases=("wait",),
    ),
    Operation(
        name="history",
        title="Journal of changes",
        description="Show the journal: every change this tool attempted at a provider (newest first), with its "
        "plan, cost, outcome (ok, failed, refused, or unknown when the answer was never recorded) and the "
        "resource it made. Use it to find resources that may still cost money.",
        input=HistoryInput,
        output=Listing[JournalEntry],
        effect="read",
        handler=_history,
        open_world=False,
    ),
    Operation(
        name="spend",
        title="What is running and what it costs",
        description="Show every live resource across providers with what it costs per hour now and what it has "
        "cost since creation (an upper-bound estimate), with totals per provider and overall, and when each "
        "expires. Use it to find what is burning money.",
        input=ProviderFilter,
        output=SpendReport,
        effect="read",
        handler=_spend,
    ),
    Operation(
        name="find_orphans",
        title="Find forgotten or vanished resources",
        description="Compare the providers with the journal: resources live at a provider that this tool never "
        "created (made elsewhere, or forgotten) with what each costs per hour, and resources the journal says "
        "this tool created but the provider no longer lists.",
        input=ProviderFilter,
        output=OrphanReport,
        effect="read",
        handler=_find_orphans,
        aliases=("orphans",),
    ),
    Operation(
        name="chat",
        title="Chat with an endpoint",
        description="Send one chat message to a running inference endpoint through its OpenAI-compatible "
        "/v1/chat/completions API and return the answer. The endpoint must be running (see wait_for_resource).",
        input=ChatInput,
        output=ChatResult,
        effect="read",
        handler=_chat,
    ),
    Operation(
        name="update_resource",
        title="Update or scale a resource",
        description="Change a resource: scale it (replicas, or min/max replicas for autoscaling), rename it, "
        "or change its GPU type/count where the provider allows. Asks the user to confirm the plan, including "
        "the new hourly cost. dry_run returns the plan only.",
        input=UpdateInput,
        effect="update",
        planner=_plan_update,
        aliases=("scale", "update"),
    ),
    Operation(
        name="stop_resource",
        title="Stop a resource",
        description="Stop a resource so it stops costing GPU time; it can be started again with "
        "start_resource. Asks the user to confirm. dry_run returns the plan only.",
        input=StopInput,
        effect="update",
        planner=_plan_stop,
        aliases=("stop",),
    ),
    Operation(
        name="start_resource",
        title="Start a resource",
        description="Start (or restart) a stopped resource. It costs money again once running. Asks the user "
        "to confirm. dry_run returns the plan only.",
        input=StartInput,
        effect="update",
        planner=_plan_start,
        aliases=("start",),
    ),
    Operation(
        name="reap_expired",
        title="Stop or delete expired resources",
        description="Find the resources created with expires_in whose time is up and delete them (or only stop "
        "them with action=stop). The plan lists every resource and request; the user confirms once. Use "
        "dry_run to see what has expired without changing anything.",
        input=ReapInput,
        effect="destroy",
        planner=_plan_reap,
        aliases=("reap",),
    ),
    Operation(
        name="delete_resource",
        title="Delete a resource",
        description="Delete a resource permanently. This cannot be undone. Asks the user to confirm. "
        "dry_run returns the plan only.",
        input=DeleteInput,
        effect="destroy",
        planner=_plan_delete,
        aliases=("rm", "delete"),
    ),
]


@cache
def registry() -> Registry:
    """Every operation: the unified ones, then each provider's own."""
    from gpu_tools.providers import ADAPTERS

    ops = list(CORE_OPERATIONS)
    for adapter in ADAPTERS.values():
        ops.extend(adapter.operations)
    return Registry(ops)
