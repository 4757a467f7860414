"""NeoLink AI: GPU compute instances (regions, GPU SKUs, instances with power off/on and snapshots).

API (base `https://neolink-ai.com/mdc/api/v1`, headers `namespace: <user id>` and
`Authorization: bearer <token>`): `GET /regions`, `GET /skus/computings?region_id=...`,
`POST|GET /clusters/{cluster}/instances`, `GET /clusters/{cluster}/instances/{name}`,
`POST /clusters/{cluster}/instances/{name}/power_off` (body `{gracePeriodSeconds, needSnapshot,
imageName, tag}`), `POST .../power_on` (no body), `DELETE /clusters/{cluster}/instances?name=...`.
Stop and delete answer the JSON string "ok".

An instance's id is its `name` (`instance-ccffxxxx`); every instance path also needs the cluster,
which the unified lifecycle tools do not carry. The adapter remembers the cluster of every instance
it has seen and otherwise looks the name up in each region's cluster (usually one).

Prices are CNY (the currency is stated on every offer); USD figures are converted at the
configurable `usd_per_cny` rate and marked as estimates. The docs do not state the price unit: it
is taken as per hour for every billing type, which errs on the safe side of a USD/hour cap.
The SSH password and the Jupyter token (inside the Jupyter URL) are masked unless asked for.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from gpu_tools.errors import InvalidInput, MalformedResponse, NotFound, ProviderError, ProviderRejected
from gpu_tools.http import Kept, Memo
from gpu_tools.journal import Journal
from gpu_tools.models import Listing, Offer, Plan, Region, Resource, Status, WireRequest
from gpu_tools.operations import CreateInput, Operation, OpInput, Progress, StopInput
from gpu_tools.providers.base import Provider, Truncated
from gpu_tools.settings import Settings

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")
CURRENCY = "CNY"
BILLING_TYPES: dict[str, str] = {"1": "pay-as-you-go", "2": "monthly", "3": "weekly", "4": "daily"}
# The CostTime unit each prepaid billing type takes ("3D" = three days, "+3D" extends by three days).
# Only "D" appears in the docs; "W" and "M" for weekly and monthly terms are inferred.
TERM_UNIT: dict[str, str] = {"2": "M", "3": "W", "4": "D"}
TERM_HOURS: dict[str, int] = {"D": 24, "W": 24 * 7, "M": 24 * 30}
TERM_WORD: dict[str, str] = {"D": "day", "W": "week", "M": "month"}
COST_TIME = re.compile(r"^(\+?)([1-9][0-9]{0,3})([DWM])$")
# The billing types by name, as the tools take them; the provider's integer is sent on the wire.
Billing = Literal["pay_as_you_go", "monthly", "weekly", "daily"]
BILLING_CODES: dict[str, str] = {"pay_as_you_go": "1", "monthly": "2", "weekly": "3", "daily": "4"}
_TERM = re.compile(r"^(\+?)\s*([1-9][0-9]{0,3})\s*(d|day|days|w|week|weeks|m|month|months)$", re.IGNORECASE)


def _billing_name(value: Any) -> Any:
    """Also the provider's own integer (1-4, or "1"), or a name with a dash or blank."""
    if isinstance(value, int | str) and not isinstance(value, bool):
        text = str(value).strip().lower().replace("-", "_").replace(" ", "_")
        return {code: name for name, code in BILLING_CODES.items()}.get(text, text)
    return value


def _term(value: Any) -> Any:
    """`3D`, `3 days`, `2 weeks`, `1 month`, `+3D` -> the provider's `3D`, `2W`, `1M`, `+3D`."""
    if isinstance(value, str) and (match := _TERM.match(value.strip())):
        return f"{match.group(1)}{match.group(2)}{match.group(3)[0].upper()}"
    return value


STATUS: dict[str, Status] = {
    "creating": "pending",
    "starting": "pending",
    "shutting down": "pending",
    "running": "running",
    "shutdown": "stopped",
    "deleting": "deleting",
}
# A `token=` (or similar) query parameter inside a URL, e.g. the Jupyter link.
# Instance lists are paged with `page` (from 1) and `pageSize`. The docs show only the unpaged
# request and its `hasNextPage`/`totalCount`; these names are the sandbox's assumption, so the
# adapter checks what it gets: a provider that caps the page lower is followed at its own size, and
# one that ignores `page` is caught by repeated pages (the listing then says it is incomplete).
PAGE_SIZE = 100
MAX_PAGES = 200  # pages read at most per cluster (20 000 instances); beyond that the listing says so


def _to_str(value: Any) -> Any:
    """The provider writes ids and enum numbers as strings ("1") in some answers, numbers in others."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return str(int(value)) if float(value).is_integer() else str(value)
    return value


Str = Annotated[str, BeforeValidator(_to_str)]


def billing_name(cost_type: str | None) -> str | None:
    return BILLING_TYPES.get(str(cost_type)) if cost_type not in (None, "") else None


# ---- wire models (mirror the documented JSON) -------------------------------------------------
class Wire(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class WireRegion(Wire):
    id: str
    region: str | None = None
    cluster_name: str = Field(alias="clusterName")
    harbor_addr: str | None = Field(None, alias="harborAddr")
    howler_id: str | None = Field(None, alias="howlerID")
    created_at: str | None = Field(None, alias="createdAt")
    updated_at: str | None = Field(None, alias="updatedAt")


class Sku(Wire):
    name: str
    region_id: str | None = Field(None, alias="regionID")
    cpu_arch: str | None = Field(None, alias="cpuArch")
    cpu_series: str | None = Field(None, alias="cpuSeries")
    cpu_cores: int | None = Field(None, alias="cpucores")
    memory_count: float | None = Field(None, alias="memoryCount")
    cpu_vendor: str | None = Field(None, alias="cpuVendor")
    gpu_series: str | None = Field(None, alias="gpuSeries")
    gpu_product: str | None = Field(None, alias="gpuProduct")
    gpu_resource_key: str | None = Field(None, alias="gpuResourceKey")
    gpu_counts: int | None = Field(None, alias="gpuCounts")
    gpu_memory: float | None = Field(None, alias="gpuMemory")
    system_storage: float | None = Field(None, alias="systemstorage")
    data_storage: float | None = Field(None, alias="datastorage")
    skus_id: Str = Field(alias="skusID")
    region_name: str | None = Field(None, alias="regionName")
    cluster_name: str | None = Field(None, alias="clusterName")
    selling_type: Str | None = Field(None, alias="sellingType")
    ratio: float | None = None
    discount_id: Str | None = Field(None, alias="discountID")
    discount_start_time: str | None = Field(None, alias="discountStartTime")
    discount_end_time: str | None = Field(None, alias="discountEndTime")
    price: float | None = None
    remain_gpu_count: int | None = Field(None, alias="remainGPUCount")

    def selling_types(self) -> set[str]:
        """The billing types this SKU is sold under ("1", or a comma list should the API send one)."""
        return {t.strip() for t in (self.selling_type or "").split(",") if t.strip()}


class Cost(Wire):
    cost_type: Str | None = Field(None, alias="CostType")
    cost_time: str | None = Field(None, alias="CostTime")
    discount_id: Str | None = Field(None, alias="DiscountID")
    gpu_sku_id: Str | None = Field(None, alias="GPUSKUID")
    disk_sku_id: Str | None = Field(None, alias="DiskSKUID")
    coupon_id: Str | None = Field(None, alias="CouponID")


class SSH(Wire):
    ssh_addr: str | None = Field(None, alias="sshAddr")
    ssh_password: str | None = Field(None, alias="sshPassword")


class Servers(Wire):
    jupyterlab: str | None = Field(None, alias="Jupyterlab")
    tensorboard: str | None = Field(None, alias="Tensorboard")
    ssh: SSH | None = Field(None, alias="SSH")


class InstanceResources(Wire):
    cpu: Str | None = None
    memory: Str | None = None
    gpu_num: Str | None = Field(None, alias="GPUNum")
    gpu_type: Str | None = Field(None, alias="GPUType")


class VolumeMount(Wire):
    path_in_container: str | None = Field(None, alias="PathInContainer")
    type: str | None = Field(None, alias="Type")
    size: int | None = Field(None, alias="Size")
    pvc_name: str | None = Field(None, alias="PVCName")
    display_name: str | None = Field(None, alias="displayName")
    filesystem_type: str | None = Field(None, alias="filesystemType")


class Container(Wire):
    name: str | None = Field(None, alias="Name")


class Pod(Wire):
    name: str | None = Field(None, alias="Name")
    containers: list[Container] = Field(default_factory=list, alias="Containers")
    node_scheduled: str | None = Field(None, alias="nodeScheduled")
    ip: str | None = None


class Instance(Wire):
    name: str
    namespace: str | None = None
    region: str | None = Field(None, alias="Region")
    display_name: str | None = Field(None, alias="displayName")
    description: str | None = None
    annotations: dict[str, Any] = Field(default_factory=dict)
    uid: str | None = None
    servers: Servers | None = None
    image: str | None = None
    replicas: int | None = None
    resources: InstanceResources | None = None
    volume_mounts: list[VolumeMount] = Field(default_factory=list, alias="volumeMounts")
    creation_timestamp: str | None = Field(None, alias="creationTimestamp")
    update_timestamp: str | None = Field(None, alias="updateTimestamp")
    schedule_stop_timestamp: str | None = Field(None, alias="ScheduleStopTimestamp")
    status: str | None = None
    cost: Cost | None = None
    pods: list[Pod] = Field(default_factory=list, alias="Pods")


class InstanceList(Wire):
    has_next_page: bool = Field(False, alias="hasNextPage")
    nodes: list[Instance] = Field(default_factory=list)
    total_count: int | None = Field(None, alias="totalCount")


class CostBody(BaseModel):
    """`Cost` of the create body: every field a string, empty when not used (as documented)."""

    model_config = ConfigDict(populate_by_name=True)
    cost_type: str = Field(alias="CostType")
    coupon_id: str = Field("", alias="CouponID")
    disk_sku_id: str = Field(alias="DiskSKUID")
    gpu_sku_id: str = Field(alias="GPUSKUID")
    cost_time: str = Field("", alias="CostTime")


class VolumeBody(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    path_in_container: str | None = Field(None, alias="PathInContainer")
    size: int | None = Field(None, alias="Size")
    type: str | None = Field(None, alias="Type")


class CreateBody(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    cost: CostBody = Field(alias="Cost")
    volume_mount: list[VolumeBody] = Field(alias="VolumeMount")
    namespace: str
    display_name: str = Field(alias="displayName")
    image: str
    region: str = Field("", alias="Region")


# ---- operation inputs ------------------------------------------------------------------------
class NeolinkCreateInstance(CreateInput):
    """Create a NeoLink compute instance (argument names are the documented fields, Cost and
    VolumeMount flattened)."""

    display_name: str = Field(description="Instance name shown in the console (displayName).", min_length=1)
    image: str = Field(
        description="Container image, official or private, e.g. images.neolink-ai.com/matrixdc/pytorch:2.3.0.",
        min_length=1,
    )
    gpu_sku_id: Str = Field(
        description="GPU SKU id (Cost.GPUSKUID): the offer_id from list_offers or neolink_list_skus.",
        min_length=1,
    )
    cost_type: Annotated[Billing, BeforeValidator(_billing_name)] = Field(
        "pay_as_you_go",
        description="Billing (Cost.CostType, sent as NeoLink's 1-4); one the SKU is sold with.",
    )
    cost_time: Annotated[str | None, BeforeValidator(_term)] = Field(
        None,
        description="Prepaid term (Cost.CostTime) in the billing's unit: '3 days', '2 weeks', '1 month' (or "
        "3D, 2W, 1M; + extends). Not for pay_as_you_go.",
    )
    coupon_id: str | None = Field(None, description="Coupon id (Cost.CouponID); pay-as-you-go only.")
    disk_sku_id: Str = Field("1", description="Disk SKU id (Cost.DiskSKUID); currently only 1 exists.")
    volume_path: str = Field(
        "/root/data", description="Where the data disk is mounted (VolumeMount.PathInContainer)."
    )
    volume_size: int | None = Field(
        None, ge=1, le=100_000, description="Data disk size in GB (VolumeMount.Size)."
    )
    volume_type: str | None = Field(
        None, description="Data disk type (VolumeMount.Type), e.g. shared-filesystem."
    )
    region: str | None = Field(
        None,
        description="Region id, name or cluster name from list_regions, sent as given (default: Beijing Zone 1).",
    )
    cluster_name: str | None = Field(
        None, description="Cluster to create in (the path's clusterName); default: the chosen region's."
    )

    @model_validator(mode="after")
    def _check_billing(self) -> NeolinkCreateInstance:
        kind = self.cost_code
        if kind == "1":
            if self.cost_time:
                raise ValueError(
                    "cost_time is only for prepaid billing (monthly, weekly or daily); leave it empty"
                )
        else:
            if not self.cost_time:
                raise ValueError(f"cost_type {self.cost_type} needs cost_time, e.g. 1{TERM_UNIT[kind]}")
            match = COST_TIME.match(self.cost_time.strip())
            if match is None or match.group(3) != TERM_UNIT[kind]:
                raise ValueError(
                    f"cost_time {self.cost_time!r} does not match {BILLING_TYPES[kind]} billing; "
                    f"use a count of {TERM_WORD[TERM_UNIT[kind]]}s like 1{TERM_UNIT[kind]} "
                    f"(or +1{TERM_UNIT[kind]} to extend)"
                )
            self.cost_time = self.cost_time.strip()
            if self.coupon_id:
                raise ValueError("coupon_id is only valid for pay-as-you-go (cost_type pay_as_you_go)")
        return self

    @property
    def cost_code(self) -> str:
        """The provider's integer for `cost_type`, as the string it is sent as."""
        return BILLING_CODES[self.cost_type]


class NeolinkListSkus(OpInput):
    positional = ("region_id",)
    region_id: str = Field(
        description="Region id, region name or cluster name from list_regions (provider neolink).",
        min_length=1,
    )
    available_only: bool = Field(False, description="Only SKUs with enough GPUs left to rent now.")


# ---- the adapter ------------------------------------------------------------------------------
class NeolinkProvider(Provider):
    name = "neolink"
    title = "NeoLink AI"
    capabilities = frozenset({"offers", "regions", "resources", "stop", "start", "delete", "stop_snapshot"})
    secret_keys = frozenset({"sshPassword", "ssh_password", "jupyter_token"})

    def __init__(
        self,
        settings: Settings,
        transport: httpx.AsyncBaseTransport | None = None,
        journal: Journal | None = None,
    ) -> None:
        super().__init__(settings, transport=transport, journal=journal)
        # instance name -> cluster, learned from every answer, so lifecycle calls need no search.
        self._cluster_of: dict[str, str] = {}
        # The region list of the last read (or an earlier process's, from the shelf, for
        # catalog_cache_ttl): listings start on it while it is read again.
        self._region_memo: Memo[list[WireRegion]] = Memo(
            lambda: self.settings.catalog_cache_ttl,
            kept=Kept(
                self.shelf,
                "regions",
                lambda regions: [
                    r.model_dump(mode="json", by_alias=True, exclude_none=True) for r in regions
                ],
                lambda raw: [WireRegion.model_validate(r) for r in raw],
            ),
        )

    @classmethod
    def is_configured(cls, settings: Settings) -> bool:
        return settings.neolink_api_token is not None and bool(settings.neolink_namespace)

    def base_url(self) -> str:
        return self.settings.neolink_base_url

    def auth_headers(self) -> dict[str, str]:
        assert self.settings.neolink_api_token is not None and self.settings.neolink_namespace
        return {
            "namespace": self.settings.neolink_namespace,
            "Authorization": f"bearer {self.settings.neolink_api_token.get_secret_value()}",
        }

    def config_hint(self) -> str:
        return (
            "Set NEOLINK_API_TOKEN and NEOLINK_NAMESPACE (your user id), or neolink_api_token and "
            "neolink_namespace in config.toml, or use the sandbox."
        )

    # ---- answers -------------------------------------------------------------------------------
    def _answer(self, body: Any) -> Any:
        """The documented answers are bare JSON. Should the API wrap one in `{code, msg, data}`,
        a non-zero code is an error even under HTTP 200, and a zero code carries `data`."""
        if isinstance(body, dict) and "code" in body and set(body) <= {"code", "msg", "message", "data"}:
            code = body.get("code")
            if code not in (0, "0", 200, "200"):
                message = body.get("msg") or body.get("message") or f"error code {code}"
                raise ProviderRejected(f"{message} (code {code})", provider=self.name)
            return body.get("data")
        return body

    def _parse(self, model: type[Wire], body: Any, what: str) -> Any:
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"]) or what
            raise MalformedResponse(f"unreadable {what}: {loc}: {first['msg']}", provider=self.name) from None

    def _list(self, body: Any, what: str) -> list[Any]:
        body = self._answer(body)
        if not isinstance(body, list):
            raise MalformedResponse(
                f"expected a list of {what}, got {type(body).__name__}", provider=self.name
            )
        return body

    # ---- mapping ---------------------------------------------------------------------------
    def usd_per_hour(self, price: float | None) -> float | None:
        return None if price is None else round(price * self.settings.usd_per_cny, 6)

    def price_source(self, sku: Sku) -> str:
        return (
            f"NeoLink SKU {sku.skus_id} lists {sku.price:g} {CURRENCY} per hour; converted to USD at the "
            f"configured rate usd_per_cny={self.settings.usd_per_cny:g} (an estimate)"
        )

    def to_region(self, r: WireRegion) -> Region:
        return Region(
            provider=self.name,
            region_id=r.id,
            name=r.region,
            details=r.model_dump(mode="json", exclude_none=True, exclude={"id", "region"}),
        )

    def to_offer(self, sku: Sku) -> Offer:
        kinds = sorted(sku.selling_types())
        available = None
        if sku.remain_gpu_count is not None:
            available = sku.remain_gpu_count >= (sku.gpu_counts or 1)
        details: dict[str, Any] = {
            "billing_type": ", ".join(BILLING_TYPES.get(k, f"type {k}") for k in kinds) or None,
            "cost_type": sku.selling_type,
            "region_id": sku.region_id,
            "cluster_name": sku.cluster_name,
            "cpu": " ".join(x for x in (sku.cpu_vendor, sku.cpu_series, sku.cpu_arch) if x) or None,
            "system_storage_gb": sku.system_storage,
            "data_storage_gb": sku.data_storage,
            "remain_gpus": sku.remain_gpu_count,
            "gpu_resource_key": sku.gpu_resource_key,
        }
        if sku.discount_id:
            details["discount"] = {
                "discount_id": sku.discount_id,
                "ratio": sku.ratio,
                "starts": sku.discount_start_time,
                "ends": sku.discount_end_time,
            }
        if sku.price is not None:
            details["price_unit"] = f"{CURRENCY} per hour (the API docs state no unit)"
            details["usd_note"] = (
                f"USD converted from {CURRENCY} at usd_per_cny={self.settings.usd_per_cny:g} (estimate)"
            )
        return Offer(
            provider=self.name,
            kind="instance",
            offer_id=sku.skus_id,
            gpu_name=sku.gpu_product or sku.name,
            gpu_count=sku.gpu_counts,
            gpu_memory_gb=sku.gpu_memory,
            vcpu=sku.cpu_cores,
            ram_gb=sku.memory_count,
            region=sku.region_name or sku.region_id,
            price=sku.price,
            currency=CURRENCY,
            usd_per_hour=self.usd_per_hour(sku.price),
            price_estimated=sku.price is not None,
            available=available,
            details={k: v for k, v in details.items() if v is not None},
        )

    def to_resource(self, inst: Instance, *, cluster: str | None = None, reveal: bool = False) -> Resource:
        if cluster or inst.region:
            self._cluster_of[inst.name] = cluster or inst.region or ""
        raw = inst.status
        status: Status = STATUS.get((raw or "").strip().lower(), "unknown")
        res = inst.resources or InstanceResources()
        servers = inst.servers or Servers()
        ssh = servers.ssh or SSH()
        cost = inst.cost or Cost()
        gpu_count: int | None = None
        if res.gpu_num and res.gpu_num.isdigit():
            gpu_count = int(res.gpu_num)
        details: dict[str, Any] = {
            "cluster_name": cluster or inst.region,
            "ssh_address": ssh.ssh_addr,
            "ssh_password": ssh.ssh_password,
            "jupyter_url": servers.jupyterlab,
            "tensorboard_url": servers.tensorboard,
            "billing_type": billing_name(cost.cost_type),
            "cost_type": cost.cost_type,
            "cost_time": cost.cost_time or None,
            "gpu_sku_id": cost.gpu_sku_id,
            "disk_sku_id": cost.disk_sku_id,
            "coupon_id": cost.coupon_id or None,
            "image": inst.image,
            "cpu": res.cpu,
            "memory": res.memory,
            "uid": inst.uid,
            "volumes": [v.dump() for v in inst.volume_mounts] or None,
            "pods": [p.dump() for p in inst.pods] or None,
            "annotations": inst.annotations or None,
            "schedule_stop": inst.schedule_stop_timestamp,
        }
        details = {k: v for k, v in details.items() if v not in (None, "")}
        url = servers.jupyterlab
        if not reveal:
            details = self.mask(details)
            url = self.mask(url)
        return Resource(
            provider=self.name,
            kind="instance",
            resource_id=inst.name,
            name=inst.display_name,
            status=status,
            raw_status=raw,
            region=inst.region,
            gpu_name=res.gpu_type,
            gpu_count=gpu_count,
            replicas=inst.replicas,
            url=url,
            created_at=inst.creation_timestamp,
            sandbox=self.settings.sandbox,
            details=details,
        )

    # ---- reads -----------------------------------------------------------------------------
    async def _read_regions(self) -> list[WireRegion]:
        body = await self.http.request("GET", "/regions")
        return [self._parse(WireRegion, r, "region") for r in self._list(body, "regions")]

    async def _regions(self) -> list[WireRegion]:
        """Read on every call (concurrent callers share one read); the answer is kept as the
        region list listings start on."""
        return (await self._region_memo.get(None, self._read_regions, refresh=True)).value

    def _known_regions(self) -> list[WireRegion]:
        kept = self._region_memo.fresh(None)
        return kept.value if kept is not None else []

    async def _per_region(
        self, key: Callable[[WireRegion], str], fn: Callable[[str], Awaitable[T]]
    ) -> list[tuple[str, T]]:
        """`fn` once per distinct `key` of the regions, with its key, in the regions' order.

        The region list is read on every call, and at the same time `fn` already runs for the
        regions known from the last read: a warm call is one round trip, and a region that appeared
        since is still covered (its `fn` starts when the list answers). Work for a region that is
        gone from the list is dropped."""
        started: dict[str, asyncio.Future[T]] = {
            k: asyncio.ensure_future(fn(k)) for k in dict.fromkeys(map(key, self._known_regions()))
        }
        try:
            keys = list(dict.fromkeys(map(key, await self._regions())))
            for k in keys:
                if k not in started:
                    started[k] = asyncio.ensure_future(fn(k))
            return list(zip(keys, await asyncio.gather(*(started[k] for k in keys)), strict=True))
        finally:
            for task in started.values():
                task.cancel()  # only still running for a region that is gone, or after a failure
            await asyncio.gather(*started.values(), return_exceptions=True)

    async def _clusters(self) -> list[str]:
        return list(dict.fromkeys(r.cluster_name for r in await self._regions()))

    async def _region(self, ref: str | None, regions: list[WireRegion] | None = None) -> WireRegion:
        """The region named by id, name or cluster name; the first listed one when `ref` is empty."""
        regions = regions if regions is not None else await self._regions()
        if not regions:
            raise MalformedResponse("the region list is empty", provider=self.name)
        if not ref:
            return regions[0]
        for r in regions:
            if ref in (r.id, r.region, r.cluster_name):
                return r
        known = "; ".join(f"{r.id} ({r.region}, cluster {r.cluster_name})" for r in regions)
        raise InvalidInput(f"unknown region {ref!r}. Known regions: {known}.", provider=self.name)

    async def _skus(self, region_id: str) -> list[Sku]:
        body = await self.http.request("GET", "/skus/computings", params={"region_id": region_id})
        return [self._parse(Sku, s, "GPU SKU") for s in self._list(body, "GPU SKUs")]

    async def list_regions(self) -> list[Region]:
        return [self.to_region(r) for r in await self._regions()]

    async def list_offers(self, *, refresh: bool = False) -> list[Offer]:
        per_region = await self._per_region(lambda r: r.id, self._skus)
        return [self.to_offer(s) for _, skus in per_region for s in skus]

    async def list_skus(self, data: NeolinkListSkus) -> list[Offer]:
        region = await self._region(data.region_id)
        offers = [self.to_offer(s) for s in await self._skus(region.id)]
        return [o for o in offers if o.available is not False] if data.available_only else offers

    async def _page(self, path: str, page: int) -> InstanceList:
        params = {"page": page, "pageSize": PAGE_SIZE} if page > 1 else {"pageSize": PAGE_SIZE}
        body = self._answer(await self.http.request("GET", path, params=params))
        return self._parse(InstanceList, body, "instance list")

    async def _instances(self, cluster: str) -> tuple[list[Instance], str | None]:
        """Every instance of a cluster, and a note when the listing is incomplete.

        The first page gives `totalCount` and the page size the provider honours; the other pages
        are then asked for all at once (the http layer bounds how many are in flight). Should the
        list grow meanwhile, pages after the last are followed while `hasNextPage` says so."""
        path = f"/clusters/{quote(cluster, safe='')}/instances"
        first = await self._page(path, 1)
        seen: dict[str, Instance] = {i.name: i for i in first.nodes}
        size = len(first.nodes)
        total = first.total_count
        note: str | None = None
        if first.has_next_page and size:
            expected = -(-total // size) if total else 2
            last = min(expected, MAX_PAGES)
            pages = await asyncio.gather(*(self._page(path, n) for n in range(2, last + 1)))
            more = pages[-1].has_next_page if pages else first.has_next_page
            repeated = False
            for listing in pages:
                new = [i for i in listing.nodes if i.name not in seen]
                repeated |= bool(listing.nodes) and not new
                seen.update((i.name, i) for i in new)
            while more and not repeated and last < MAX_PAGES:
                last += 1
                listing = await self._page(path, last)
                new = [i for i in listing.nodes if i.name not in seen]
                repeated = bool(listing.nodes) and not new
                seen.update((i.name, i) for i in new)
                more = listing.has_next_page and bool(listing.nodes)
            if repeated:
                note = (
                    f"cluster {cluster}: later pages repeated earlier ones, so the provider seems to ignore "
                    f"`page`; {len(seen)} of {total if total is not None else 'more'} instances listed."
                )
            elif more:
                note = (
                    f"cluster {cluster}: stopped after {MAX_PAGES} pages of {size}; {len(seen)} of "
                    f"{total if total is not None else 'more'} instances listed."
                )
        elif first.has_next_page:
            note = f"cluster {cluster}: the first page was empty but says more follow; none listed."
        for name in seen:
            self._cluster_of[name] = cluster
        return list(seen.values()), note

    async def list_resources(self) -> list[Resource]:
        """Every cluster's instances at once (see `_per_region`); a listing cut short raises
        `Truncated` with what was listed, which a fan-out reports as a partial answer."""

        out: list[Resource] = []
        notes: list[str] = []
        for cluster, (instances, note) in await self._per_region(lambda r: r.cluster_name, self._instances):
            out += [self.to_resource(i, cluster=cluster) for i in instances]
            notes += [note] if note else []
        if notes:
            raise Truncated(out, " ".join(notes), provider=self.name)
        return out

    async def _get(self, cluster: str, name: str) -> Instance:
        answer = await self.http.request("GET", self._instance_path(cluster, name))
        return self._parse(Instance, self._answer(answer), "instance")

    async def _locate(self, name: str) -> tuple[str, Instance]:
        """The cluster holding instance `name`, and the instance: the remembered cluster first,
        then every region's cluster."""
        tried: list[str] = []
        known = self._cluster_of.get(name)
        if known:
            try:
                return known, await self._get(known, name)
            except NotFound:
                self._cluster_of.pop(name, None)
                tried.append(known)
        for cluster in await self._clusters():
            if cluster in tried:
                continue
            try:
                inst = await self._get(cluster, name)
            except NotFound:
                continue
            self._cluster_of[name] = cluster
            return cluster, inst
        raise NotFound(
            f"no instance {name!r} in any NeoLink cluster", provider=self.name, hint="See list_resources."
        )

    async def get_resource(self, resource_id: str, *, reveal_secrets: bool = False) -> Resource:
        cluster, inst = await self._locate(resource_id)
        return self.to_resource(inst, cluster=cluster, reveal=reveal_secrets)

    async def _sku_of(self, cluster: str, sku_id: str | None) -> Sku | None:
        """The GPU SKU an instance was created from, looked up in its cluster's regions (for prices)."""
        if not sku_id:
            return None
        for region in await self._regions():
            if region.cluster_name != cluster:
                continue
            for sku in await self._skus(region.id):
                if sku.skus_id == sku_id:
                    return sku
        return None

    # ---- mutations -------------------------------------------------------------------------
    async def _placement(self, data: NeolinkCreateInstance) -> WireRegion:
        """The region a create goes to: named by `region`, else the first in `cluster_name`, else the
        first listed (the provider's default region); its cluster must match `cluster_name`."""
        regions = await self._regions()
        if data.cluster_name and not data.region:
            region = next((r for r in regions if r.cluster_name == data.cluster_name), None)
            if region is None:
                clusters = ", ".join(dict.fromkeys(r.cluster_name for r in regions))
                raise InvalidInput(
                    f"unknown cluster {data.cluster_name!r}. Known clusters: {clusters}.", provider=self.name
                )
            return region
        region = await self._region(data.region, regions)
        if data.cluster_name and data.cluster_name != region.cluster_name:
            raise InvalidInput(
                f"region {region.region or region.id} is in cluster {region.cluster_name}, "
                f"not {data.cluster_name}.",
                provider=self.name,
            )
        return region

    async def plan_create(self, data: NeolinkCreateInstance) -> Plan:
        region = await self._placement(data)
        cluster = region.cluster_name
        skus = await self._skus(region.id)
        sku = next((s for s in skus if s.skus_id == data.gpu_sku_id), None)
        if sku is None:
            listed = ", ".join(f"{s.skus_id} ({s.gpu_counts or 1}x {s.name})" for s in skus) or "none"
            raise InvalidInput(
                f"GPU SKU {data.gpu_sku_id!r} is not offered in {region.region or region.id}. "
                f"SKUs there: {listed}.",
                provider=self.name,
            )
        kind = data.cost_code
        billing = BILLING_TYPES[kind]
        if sku.selling_types() and kind not in sku.selling_types():
            sold = ", ".join(BILLING_TYPES.get(t, t) for t in sorted(sku.selling_types()))
            raise InvalidInput(
                f"GPU SKU {sku.skus_id} ({sku.name}) is sold {sold}, not {billing}; set cost_type to match "
                "or pick another SKU.",
                provider=self.name,
            )
        namespace = self.settings.neolink_namespace or ""
        body = CreateBody(
            cost=CostBody(
                cost_type=kind,
                coupon_id=data.coupon_id or "",
                disk_sku_id=data.disk_sku_id,
                gpu_sku_id=sku.skus_id,
                cost_time=data.cost_time or "",
            ),
            volume_mount=[
                VolumeBody(path_in_container=data.volume_path, size=data.volume_size, type=data.volume_type)
            ],
            namespace=namespace,
            display_name=data.display_name,
            image=data.image,
            region=data.region or "",
        ).model_dump(by_alias=True, exclude_none=True)

        usd = self.usd_per_hour(sku.price)
        warnings: list[str] = []
        if sku.remain_gpu_count is not None and sku.remain_gpu_count < (sku.gpu_counts or 1):
            warnings.append(f"only {sku.remain_gpu_count} GPUs of this SKU are left; creation may fail.")
        term = ""
        if kind != "1":
            match = COST_TIME.match(data.cost_time or "")
            assert match is not None  # checked by the input model
            count, unit = int(match.group(2)), match.group(3)
            plural = "s" if count > 1 else ""
            term = f" for a prepaid term of {data.cost_time} ({count} {TERM_WORD[unit]}{plural})"
            if sku.price is not None:
                total = sku.price * TERM_HOURS[unit] * count
                usd_total = total * self.settings.usd_per_cny
                warnings.append(
                    f"{billing} billing is prepaid: about {total:,.0f} {CURRENCY} (~${usd_total:,.0f}, an "
                    "estimate) for the whole term, charged whether or not the instance runs."
                )
        gpus = sku.gpu_counts or 1
        price_text = f"{sku.price:g} {CURRENCY}/hour" if sku.price is not None else "an unlisted price"
        return self.plan(
            operation="neolink_create_instance",
            action=(
                f"Create NeoLink instance {data.display_name!r} on {gpus}x {sku.name} (GPU SKU {sku.skus_id}) "
                f"in {region.region or region.id} (cluster {cluster}), image {data.image}, billed {billing}"
                f"{term} at {price_text}."
            ),
            target=data.display_name,
            request=WireRequest(
                method="POST", path=f"/clusters/{quote(cluster, safe='')}/instances", json_body=body
            ),
            finish=lambda answer: self._finish_instance(answer, cluster),
            reversible=kind == "1",
            reversibility=(
                "delete it with delete_resource; GPU time is billed while it runs."
                if kind == "1"
                else f"the {billing} term is paid up front; deleting the instance early may not refund it."
            ),
            usd_per_hour=usd,
            price_source=self.price_source(sku) if sku.price is not None else "the SKU lists no price",
            gpus=gpus,
            gpu_name=sku.name,
            warnings=warnings,
        )

    async def _finish_instance(self, answer: Any, cluster: str) -> Resource:
        inst = self._parse(Instance, self._answer(answer), "instance")
        return self.to_resource(inst, cluster=cluster)

    def _finish_ok(
        self, name: str, cluster: str, action: str, extra: dict[str, Any]
    ) -> Callable[[Any], Awaitable[dict[str, Any]]]:
        """Stop, start and delete answer the JSON string "ok"; anything else is reported as is."""

        async def finish(answer: Any) -> dict[str, Any]:
            answer = self._answer(answer)
            if isinstance(answer, str) and answer.strip().lower() not in ("ok", ""):
                raise ProviderError(f"{action} {name} answered {answer!r}", provider=self.name)
            return {"resource_id": name, "cluster_name": cluster, "action": action, "answer": answer, **extra}

        return finish

    def _instance_path(self, cluster: str, name: str) -> str:
        return f"/clusters/{quote(cluster, safe='')}/instances/{quote(name, safe='')}"

    async def plan_stop(self, data: StopInput) -> Plan:
        cluster, inst = await self._locate(data.resource_id)
        image, tag, grace = data.snapshot_image_name, data.snapshot_tag, data.grace_period_seconds
        if tag and not image:
            raise InvalidInput("snapshot_tag needs snapshot_image_name.", provider=self.name)
        body: dict[str, Any] = {}
        if grace is not None:
            body["gracePeriodSeconds"] = grace
        body["needSnapshot"] = bool(image)
        if image:
            body["imageName"] = image
            if tag:
                body["tag"] = tag
        warnings = []
        status = STATUS.get((inst.status or "").strip().lower(), "unknown")
        if status != "running":
            warnings.append(
                f"the instance is {inst.status}, not Running; NeoLink may refuse to power it off."
            )
        snapshot = f", saving it as image {image}{':' + tag if tag else ''}" if image else ""
        grace_text = f"{grace}s" if grace is not None else "the default 10s"
        return self.plan(
            operation="stop_resource",
            action=(
                f"Power off NeoLink instance {inst.display_name or inst.name} ({inst.name}) after a grace "
                f"period of {grace_text}{snapshot}."
            ),
            target=inst.name,
            request=WireRequest(
                method="POST", path=self._instance_path(cluster, inst.name) + "/power_off", json_body=body
            ),
            finish=self._finish_ok(
                inst.name,
                cluster,
                "power_off",
                {"snapshot": {"image_name": image, "tag": tag}} if image else {},
            ),
            reversible=True,
            reversibility="power it on again with start_resource; processes still running are killed.",
            warnings=warnings,
        )

    async def plan_start(self, resource_id: str) -> Plan:
        cluster, inst = await self._locate(resource_id)
        cost = inst.cost or Cost()
        sku: Sku | None = None
        try:
            sku = await self._sku_of(cluster, cost.gpu_sku_id)
        except ProviderError:
            sku = None  # the price is only informative here; the start itself does not depend on it
        res = inst.resources or InstanceResources()
        gpus = int(res.gpu_num) if res.gpu_num and res.gpu_num.isdigit() else None
        billing = billing_name(cost.cost_type)
        return self.plan(
            operation="start_resource",
            action=(
                f"Power on NeoLink instance {inst.display_name or inst.name} ({inst.name})"
                + (f", billed {billing}" if billing else "")
                + "."
            ),
            target=inst.name,
            request=WireRequest(method="POST", path=self._instance_path(cluster, inst.name) + "/power_on"),
            finish=self._finish_ok(inst.name, cluster, "power_on", {}),
            reversible=True,
            reversibility="power it off again with stop_resource.",
            usd_per_hour=self.usd_per_hour(sku.price) if sku else None,
            price_source=self.price_source(sku)
            if sku and sku.price is not None
            else f"GPU SKU {cost.gpu_sku_id} price not found",
            gpus=gpus,
            gpu_name=res.gpu_type,
        )

    async def plan_delete(self, resource_id: str) -> Plan:
        cluster, inst = await self._locate(resource_id)
        path = f"/clusters/{quote(cluster, safe='')}/instances?name={quote(inst.name, safe='')}"

        async def finish(answer: Any) -> dict[str, Any]:
            result = await self._finish_ok(inst.name, cluster, "delete", {})(answer)
            self._cluster_of.pop(inst.name, None)
            return result

        return self.plan(
            operation="delete_resource",
            action=(
                f"Delete NeoLink instance {inst.display_name or inst.name} ({inst.name}) in cluster {cluster} "
                "permanently, with its system disk."
            ),
            target=inst.name,
            request=WireRequest(method="DELETE", path=path),
            finish=finish,
            reversible=False,
            reversibility="deleting an instance is permanent; save what you need (or a snapshot with "
            "stop_resource snapshot_image_name) first.",
        )


# ---- provider operations ----------------------------------------------------------------------
async def _plan_create(tk: Any, data: NeolinkCreateInstance) -> Plan:
    return await NeolinkProvider.of(tk).plan_create(data)


async def _list_skus(tk: Any, data: NeolinkListSkus, progress: Progress | None) -> Listing[Offer]:
    from gpu_tools.gpus import with_usd

    items = [with_usd(o) for o in await NeolinkProvider.of(tk).list_skus(data)]
    return Listing[Offer](items=items, total=len(items))


NeolinkProvider.operations = [
    Operation(
        name="neolink_list_skus",
        title="List NeoLink GPU SKUs of a region",
        description="List the GPU SKUs NeoLink AI sells in one region: GPU, count, memory, CPU, RAM, billing types, "
        "price in CNY with an estimated USD figure, GPUs left. The offer_id is neolink_create_instance's gpu_sku_id.",
        input=NeolinkListSkus,
        output=Listing[Offer],
        effect="read",
        handler=_list_skus,
        provider="neolink",
        aliases=("neolink-skus",),
    ),
    Operation(
        name="neolink_create_instance",
        title="Create a NeoLink GPU instance",
        description="Create a NeoLink AI GPU instance (a container with SSH and JupyterLab) from a GPU SKU "
        "(gpu_sku_id = offer_id from list_offers or neolink_list_skus) and an image, billed pay-as-you-go or "
        "for a prepaid term. It is Creating until Running (wait_for_resource); stop_resource powers it off, "
        "optionally saving a snapshot image. Costs money: GPU time (CNY, USD estimated), prepaid terms up front.",
        input=NeolinkCreateInstance,
        effect="create",
        planner=_plan_create,
        provider="neolink",
        aliases=("neolink-create",),
    ),
]

__all__ = ["NeolinkCreateInstance", "NeolinkListSkus", "NeolinkProvider"]
