"""Sesterce Cloud: AI inference instances with per-region autoscaling, registries, price preview.

API (base `https://api.cloud.sesterce.com`, header `x-api-key`), all under `/ai-inference`:
`GET models|hardwares|regions`, `GET|POST registries`, `PATCH|DELETE registries/{id}`,
`GET|POST instances`, `GET|PATCH|DELETE instances/{id}`, `POST instances/{id}/start|stop` and
`POST instances/pricing`, which is a price *preview* (a read, sent without confirmation).
Lists are bare JSON arrays; start, stop and the registry writes answer 204 with no body; errors
are NestJS-shaped `{statusCode, timestamp, path, message}` (the http layer extracts `message`).

Mapping choices worth knowing:
- One instance can run in several regions, each with its own autoscaling; `Resource.replicas`,
  `min_replicas` and `max_replicas` are totals over the regions, and `update_resource` applies its
  min/max to every region (its plan says so).
- The documented PATCH body repeats the whole configuration and marks `modelId` and `registryId`
  required, but the documented instance detail does not report them: an update takes them from the
  detail when it has them, else from this tool's journaled create of the instance, else from the
  caller (`sesterce_update_endpoint model_id/registry_id`; the one not given is sent as null), and
  otherwise refuses before sending, saying what to pass.
- Environment variable values may be secrets: they are masked in every output (`mask`).
- The registry password is write-only: no output model has a field for it and plans mask it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from gpu_tools.errors import InvalidInput, MalformedResponse, NotFound, ProviderError
from gpu_tools.http import Kept, Memo, Stamped
from gpu_tools.journal import Journal
from gpu_tools.models import (
    Listing,
    Model,
    Offer,
    Plan,
    Region,
    Resource,
    Result,
    Status,
    Template,
    WireRequest,
)
from gpu_tools.operations import (
    CreateInput,
    MutationInput,
    NoInput,
    Operation,
    OpInput,
    Progress,
    StopInput,
    UpdateInput,
)
from gpu_tools.providers.base import MASK, Provider
from gpu_tools.settings import Settings

if TYPE_CHECKING:
    import httpx

ROOT = "/ai-inference"
INSTANCES = f"{ROOT}/instances"
REGISTRIES = f"{ROOT}/registries"
PRICING = f"{INSTANCES}/pricing"
PRICE_SOURCE = "Sesterce price preview (POST /ai-inference/instances/pricing)"
COMPACT_REGION = re.compile(r"(\d+)(?::(\d+)(?:-(\d+))?)?")

# Statuses from the official CLI. PARTIALLYDEPLOYED serves traffic from the regions that deployed
# (each region's deployStatus and errorMessage say which), so it counts as running.
STATUS: dict[str, Status] = {
    "NEW": "pending",
    "PENDING": "pending",
    "DEPLOYING": "pending",
    "ACTIVE": "running",
    "PARTIALLYDEPLOYED": "running",
    "ERROR": "failed",
    "FAILED": "failed",
    "DISABLED": "stopped",
    "DELETING": "deleting",
    "DELETED": "deleting",
}
# sesterce_update_endpoint's arguments and the PATCH body keys they set.
UPDATE_KEYS = {
    "description": "description",
    "model_id": "modelId",
    "hardware_id": "hardwareId",
    "regions": "autoScalingConfigurations",
    "container_port": "containerPort",
    "registry_id": "registryId",
    "startup_command": "startupCommand",
    "envs": "envs",
    "pod_lifetime": "podLifetime",
    "api_key_ids": "apiKeyIds",
}


# ---- wire models (mirror the documented JSON; camelCase aliases) -------------------------------
class Wire(BaseModel):
    model_config = ConfigDict(
        extra="allow", populate_by_name=True, alias_generator=to_camel, defer_build=True
    )


class WireModel(Wire):
    """An entry of `GET /ai-inference/models`."""

    id: str
    name: str
    port: int | None = None
    default_hardware_id: str | None = None
    features: list[str] = Field(default_factory=list)


class HardwareGpu(Wire):
    model: str
    count: int = 1
    memory: float | None = Field(None, description="GiB of memory per GPU.")


class Hardware(Wire):
    """An entry of `GET /ai-inference/hardwares`: `cpu` in millicores, `ram` in MiB."""

    id: str
    name: str
    cpu: int | None = None
    ram: int | None = None
    gpu: HardwareGpu | None = None


class Capacity(Wire):
    hardware_id: str
    capacity: int = 0


class WireRegion(Wire):
    """An entry of `GET /ai-inference/regions`."""

    id: int
    name: str | None = None
    country_code: str | None = None
    state: str | None = None
    capacities: list[Capacity] = Field(default_factory=list)


class Registry(Wire):
    """A registry as Sesterce returns it (it never returns the password)."""

    id: str = Field(alias="_id", validation_alias=AliasChoices("_id", "id"))
    name: str | None = None
    url: str | None = None
    username: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class Threshold(Wire):
    threshold: int


class HttpTrigger(Wire):
    rate: int
    window: int


class Triggers(Wire):
    cpu: Threshold | None = None
    gpu_memory: Threshold | None = None
    gpu_utilization: Threshold | None = None
    memory: Threshold | None = None
    http: HttpTrigger | None = None


class Scale(Wire):
    min: int | None = None
    max: int | None = None
    cooldown_period: int | None = None
    triggers: Triggers | None = None


class AutoScalingConfiguration(Wire):
    region_id: int
    scale: Scale


class DeployStatus(Wire):
    total: int | None = None
    ready: int | None = None


class Container(Wire):
    """One region of an instance, as the instance detail reports it."""

    region_id: int
    scale: Scale | None = None
    deploy_status: DeployStatus | None = None
    error_message: str | None = None


class Instance(Wire):
    """An inference instance: the short shape of lists and writes, or the full detail."""

    id: str = Field(alias="_id", validation_alias=AliasChoices("_id", "id"))
    name: str | None = None
    status: str | None = None
    hourly_price: float | None = None
    features: list[str] | None = None
    address: str | None = None
    container_port: int | None = None
    description: str | None = None
    pod_lifetime: int | None = None
    containers: list[Container] | None = None
    hardware_id: str | None = None
    model_id: str | None = None
    registry_id: str | None = None
    envs: dict[str, Any] | None = None
    startup_command: str | None = None
    # The detail says `apiKeysIds`; the create/update bodies say `apiKeyIds`. Accept both.
    api_keys_ids: list[str] | None = Field(
        None, alias="apiKeysIds", validation_alias=AliasChoices("apiKeysIds", "apiKeyIds")
    )
    created_at: str | None = None
    updated_at: str | None = None


class Pricing(Wire):
    """The answer of `POST /ai-inference/instances/pricing`."""

    currency_code: str | None = None
    price_per_hour: float
    price_per_month: float | None = None


# ---- operation inputs ------------------------------------------------------------------------
class SesterceRegionScaling(BaseModel):
    """One region of an instance and its autoscaling (one `autoScalingConfigurations` entry)."""

    model_config = ConfigDict(extra="forbid")

    region_id: int = Field(description="Region id from list_regions, e.g. 18.")
    min: int = Field(1, ge=0, description="Minimum replicas (pods) here; 0 scales to zero.")
    max: int = Field(1, ge=1, description="Maximum replicas here; the price is for this.")
    cooldown_period: int | None = Field(300, ge=0, description="Seconds between two scaling events.")
    cpu_threshold: int | None = Field(None, ge=1, le=100, description="Scale up above this CPU %.")
    gpu_memory_threshold: int | None = Field(
        None, ge=1, le=100, description="Scale up above this GPU memory %."
    )
    gpu_utilization_threshold: int | None = Field(
        None, ge=1, le=100, description="Scale up above this GPU utilization %."
    )
    memory_threshold: int | None = Field(None, ge=1, le=100, description="Scale up above this RAM %.")
    http_rate: int | None = Field(
        None, ge=1, description="Scale up above this many HTTP requests per window."
    )
    http_window: int | None = Field(None, ge=1, description="The HTTP trigger's window in seconds.")

    @model_validator(mode="before")
    @classmethod
    def _compact(cls, value: Any) -> Any:
        """Also `18` or `"18:1-3"` (REGION[:MIN-MAX], `18:2` meaning exactly 2), so the notebook
        magic can say `--regions 18:1-2,78:1-3` instead of JSON."""
        if isinstance(value, int) and not isinstance(value, bool):
            return {"region_id": value}
        if not isinstance(value, str):
            return value
        match = COMPACT_REGION.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"region {value!r}: give an object, or REGION[:MIN-MAX] such as 18:1-3")
        region, lo, hi = match.groups()
        out: dict[str, Any] = {"region_id": int(region)}
        if lo is not None:
            out["min"], out["max"] = int(lo), int(hi if hi is not None else lo)
        return out

    @model_validator(mode="after")
    def _check(self) -> SesterceRegionScaling:
        if self.min > self.max:
            raise ValueError(f"region {self.region_id}: min {self.min} exceeds max {self.max}")
        if (self.http_rate is None) != (self.http_window is None):
            raise ValueError(f"region {self.region_id}: give http_rate and http_window together")
        return self

    def to_wire(self) -> AutoScalingConfiguration:
        triggers = Triggers(
            cpu=_threshold(self.cpu_threshold),
            gpu_memory=_threshold(self.gpu_memory_threshold),
            gpu_utilization=_threshold(self.gpu_utilization_threshold),
            memory=_threshold(self.memory_threshold),
            http=HttpTrigger(rate=self.http_rate, window=self.http_window)
            if self.http_rate is not None and self.http_window is not None
            else None,
        )
        has_trigger = any(getattr(triggers, f) is not None for f in Triggers.model_fields)
        return AutoScalingConfiguration(
            region_id=self.region_id,
            scale=Scale(
                min=self.min,
                max=self.max,
                cooldown_period=self.cooldown_period,
                triggers=triggers if has_trigger else None,
            ),
        )


def _threshold(value: int | None) -> Threshold | None:
    return Threshold(threshold=value) if value is not None else None


REGIONS_HELP = (
    'The regions to run in, each with its autoscaling, e.g. [{"region_id": 18, "min": 1, "max": 2}] '
    "(region ids from list_regions; or 18:1-2,78:1-3 in the notebook magic)."
)


def _unique_regions(regions: list[SesterceRegionScaling] | None) -> None:
    ids = [r.region_id for r in regions or []]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"each region may appear once; repeated: {dupes}")


class SesterceCreateEndpoint(CreateInput):
    """Create a Sesterce AI inference instance (argument names are the documented fields, snake_case)."""

    positional: ClassVar[tuple[str, ...]] = ("name",)

    name: str = Field(description="Instance name.", min_length=1, max_length=200)
    description: str | None = Field(None, description="Optional description.")
    model_id: str | None = Field(
        None,
        description="Model id or exact name from list_templates; empty to run your own image (registry_id).",
    )
    hardware_id: str = Field(description="The offer_id of a sesterce offer from list_offers.")
    regions: list[SesterceRegionScaling] = Field(min_length=1, description=REGIONS_HELP)
    container_port: int | None = Field(
        None, ge=1, le=65535, description="Port the container listens on (default: the model's port)."
    )
    registry_id: str | None = Field(
        None, description="Registry id (sesterce_list_registries) for a private image."
    )
    startup_command: str | None = Field(None, description="Command run when the container starts.")
    envs: dict[str, str] | None = Field(None, description="Environment variables (masked in outputs).")
    pod_lifetime: int | None = Field(
        None, ge=0, description="Seconds an idle pod lives before it is scaled down."
    )
    api_key_ids: list[str] | None = Field(
        None, description="Ids of Sesterce API keys allowed to call the instance."
    )

    @model_validator(mode="after")
    def _check(self) -> SesterceCreateEndpoint:
        _unique_regions(self.regions)
        if not self.model_id and not self.registry_id:
            raise ValueError("give model_id (a catalogue model) or registry_id (your own image)")
        return self


class SesterceUpdateEndpoint(MutationInput):
    """Change any documented field of an instance; what is not given keeps its current value."""

    positional: ClassVar[tuple[str, ...]] = ("resource_id",)

    resource_id: str = Field(min_length=1, description="The instance id (resource_id from list_resources).")
    description: str | None = Field(None, description="New description.")
    model_id: str | None = Field(None, description="New model id (or exact name) from list_templates.")
    hardware_id: str | None = Field(None, description="New hardware id (offer_id from list_offers).")
    regions: list[SesterceRegionScaling] | None = Field(
        None, description=REGIONS_HELP + " Replaces every region's configuration."
    )
    container_port: int | None = Field(None, ge=1, le=65535, description="New port the container listens on.")
    registry_id: str | None = Field(None, description="New registry id (sesterce_list_registries).")
    startup_command: str | None = Field(None, description="New command run when the container starts.")
    envs: dict[str, str] | None = Field(None, description="Replaces all environment variables.")
    pod_lifetime: int | None = Field(
        None, ge=0, description="New seconds an idle pod lives before scale-down."
    )
    api_key_ids: list[str] | None = Field(
        None, description="Replaces the Sesterce API key ids allowed to call it."
    )

    @model_validator(mode="after")
    def _check(self) -> SesterceUpdateEndpoint:
        _unique_regions(self.regions)
        return self


class SesterceRegistryInput(OpInput):
    url: str = Field(min_length=1, description="Image reference, e.g. docker.io/library/user/image:tag.")
    username: str = Field(min_length=1, description="Registry user name.")
    password: str = Field(
        min_length=1,
        description="Registry password or token. Sent to Sesterce only; never shown in any output.",
        json_schema_extra={"format": "password", "writeOnly": True},
    )


class SesterceCreateRegistry(SesterceRegistryInput, CreateInput):
    positional: ClassVar[tuple[str, ...]] = ("name",)
    name: str = Field(min_length=1, max_length=200, description="Registry name.")


class SesterceUpdateRegistry(SesterceRegistryInput, MutationInput):
    positional: ClassVar[tuple[str, ...]] = ("registry_id",)
    registry_id: str = Field(min_length=1, description="Registry id from sesterce_list_registries.")


class SesterceRegistryRef(MutationInput):
    positional: ClassVar[tuple[str, ...]] = ("registry_id",)
    registry_id: str = Field(min_length=1, description="Registry id from sesterce_list_registries.")


class SesterceQuoteInput(OpInput):
    positional: ClassVar[tuple[str, ...]] = ("hardware_id",)
    hardware_id: str = Field(description="The offer_id of a sesterce offer from list_offers.")
    regions: list[SesterceRegionScaling] = Field(
        min_length=1, description=REGIONS_HELP + " Only region_id and max matter for the price."
    )

    @model_validator(mode="after")
    def _check(self) -> SesterceQuoteInput:
        _unique_regions(self.regions)
        return self


# ---- results ----------------------------------------------------------------------------------
class SesterceRegistry(Model):
    """A registry without its password (Sesterce never returns it; we never show it)."""

    registry_id: str
    name: str | None = None
    url: str | None = None
    username: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class SesterceQuote(Result):
    """Sesterce's own price for a hardware at the given maximum scale per region."""

    provider: str = "sesterce"
    hardware_id: str
    hardware_name: str | None = None
    max_replicas: int = Field(description="Replicas at maximum scale, summed over the regions.")
    gpus: int | None = Field(None, description="GPUs at maximum scale.")
    currency: str | None = None
    price_per_hour: float
    price_per_month: float | None = None
    usd_per_hour: float | None = None
    regions: list[dict[str, int]] = Field(default_factory=list)


# ---- helpers ------------------------------------------------------------------------------------
def _array(body: Any, what: str) -> list[Any]:
    if not isinstance(body, list):
        raise MalformedResponse(
            f"expected a JSON array of {what}, got {type(body).__name__}", provider="sesterce"
        )
    return body


def _parse(cls: type[Wire], body: Any, what: str) -> Any:
    try:
        return cls.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MalformedResponse(f"unreadable {what}: {where}: {first['msg']}", provider="sesterce") from None


def _mask_envs(value: Any) -> Any:
    """Mask every value of every `envs` object: environment variables often carry tokens."""
    if isinstance(value, dict):
        return {
            k: ({n: MASK for n in v} if k == "envs" and isinstance(v, dict) else _mask_envs(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_mask_envs(v) for v in value]
    return value


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def _usd(p: Pricing | None) -> float | None:
    if p is None or (p.currency_code or "USD").upper() != "USD":
        return None
    return p.price_per_hour


def _money(p: Pricing) -> str:
    cur = p.currency_code or "USD"
    month = f", {p.price_per_month:.2f} {cur}/month" if p.price_per_month is not None else ""
    return f"{p.price_per_hour:.2f} {cur}/hour{month}"


# ---- the adapter ------------------------------------------------------------------------------
class SesterceProvider(Provider):
    name = "sesterce"
    title = "Sesterce Cloud"
    capabilities = frozenset(
        {"offers", "templates", "regions", "resources", "update", "stop", "start", "delete"}
    )
    secret_keys = frozenset({"password"})

    def __init__(
        self,
        settings: Settings,
        transport: httpx.AsyncBaseTransport | None = None,
        journal: Journal | None = None,
    ) -> None:
        super().__init__(settings, transport=transport, journal=journal)
        # Prices and the hardware catalogue change slowly: kept for catalog_cache_ttl, also on this
        # account's shelf, so a new process's first list_offers is one round trip, not two.
        ttl = lambda: self.settings.catalog_cache_ttl  # noqa: E731
        self._price_memo: Memo[Pricing] = Memo(
            ttl, kept=Kept(self.shelf, "prices", _dump, Pricing.model_validate)
        )
        self._hardware_memo: Memo[list[Hardware]] = Memo(
            ttl,
            kept=Kept(
                self.shelf,
                "hardware",
                lambda hws: [_dump(h) for h in hws],
                lambda raw: [Hardware.model_validate(h) for h in raw],
            ),
        )

    @classmethod
    def is_configured(cls, settings: Settings) -> bool:
        return settings.sesterce_api_key is not None

    def base_url(self) -> str:
        return self.settings.sesterce_base_url

    def auth_headers(self) -> dict[str, str]:
        assert self.settings.sesterce_api_key is not None
        return {"x-api-key": self.settings.sesterce_api_key.get_secret_value()}

    def config_hint(self) -> str:
        return "Set SESTERCE_API_KEY (or sesterce_api_key in config.toml), or use the sandbox."

    def mask(self, value: Any) -> Any:
        """Secret-named fields, plus every environment variable value."""
        return _mask_envs(super().mask(value))

    # ---- raw reads ---------------------------------------------------------------------------
    async def _models(self) -> list[WireModel]:
        body = await self.http.request("GET", f"{ROOT}/models")
        return [_parse(WireModel, m, "model") for m in _array(body, "models")]

    async def _hardwares(self) -> list[Hardware]:
        body = await self.http.request("GET", f"{ROOT}/hardwares")
        return [_parse(Hardware, h, "hardware") for h in _array(body, "hardwares")]

    async def _regions(self) -> list[WireRegion]:
        body = await self.http.request("GET", f"{ROOT}/regions")
        return [_parse(WireRegion, r, "region") for r in _array(body, "regions")]

    async def _registries(self) -> list[Registry]:
        body = await self.http.request("GET", REGISTRIES)
        return [_parse(Registry, r, "registry") for r in _array(body, "registries")]

    async def _instance(self, resource_id: str) -> Instance:
        # Quoted: the id comes from the caller and must stay one path segment.
        body = await self.http.request("GET", f"{INSTANCES}/{quote(resource_id, safe='')}")
        return _parse(Instance, body, "instance")

    async def pricing(self, hardware_id: str, maxima: list[tuple[int, int]]) -> Pricing:
        """The provider's price for `hardware_id` with `(region_id, max)` per region. A read: the
        documented POST only previews a price, so it may be retried and needs no confirmation."""
        body = {
            "hardwareId": hardware_id,
            "autoScalingConfigurations": [{"regionId": r, "scale": {"max": m}} for r, m in maxima],
        }
        return _parse(Pricing, await self.http.request("POST", PRICING, json_body=body, safe=True), "price")

    # ---- mapping -----------------------------------------------------------------------------
    def to_resource(
        self, inst: Instance, hardware: Hardware | None = None, *, reveal: bool = False
    ) -> Resource:
        raw = inst.status.upper() if inst.status else None
        containers = inst.containers or []
        scales = [c.scale for c in containers if c.scale is not None]
        ready = [
            c.deploy_status.ready for c in containers if c.deploy_status and c.deploy_status.ready is not None
        ]
        details = _dump(inst)
        errors = [f"region {c.region_id}: {c.error_message}" for c in containers if c.error_message]
        if errors:
            details["errors"] = errors
        if hardware is not None:
            details["hardware"] = hardware.name
        return Resource(
            provider=self.name,
            kind="endpoint",
            resource_id=inst.id,
            name=inst.name,
            status=STATUS.get(raw or "", "unknown"),
            raw_status=inst.status,
            region=",".join(str(c.region_id) for c in containers) or None,
            gpu_name=hardware.gpu.model if hardware and hardware.gpu else None,
            gpu_count=hardware.gpu.count if hardware and hardware.gpu else None,
            replicas=sum(ready) if ready else None,
            min_replicas=sum(s.min or 0 for s in scales) if scales else None,
            max_replicas=sum(s.max or 0 for s in scales) if scales else None,
            url=inst.address,
            created_at=inst.created_at,
            usd_per_hour=inst.hourly_price,
            details=details if reveal else self.mask(details),
        )

    @staticmethod
    def to_registry(reg: Registry) -> SesterceRegistry:
        return SesterceRegistry(
            registry_id=reg.id,
            name=reg.name,
            url=reg.url,
            username=reg.username,
            created_at=reg.created_at,
            updated_at=reg.updated_at,
        )

    # ---- unified reads -------------------------------------------------------------------------
    async def list_templates(self) -> list[Template]:
        hardwares = {h.id: h for h in await self._hardwares()}
        out = []
        for m in await self._models():
            hw = hardwares.get(m.default_hardware_id or "")
            port = f" Default container port {m.port}." if m.port else ""
            out.append(
                Template(
                    provider=self.name,
                    name=m.name,
                    description=f"Features: {', '.join(m.features) or 'none listed'}.{port} "
                    f"Pass model_id={m.id} to sesterce_create_endpoint.",
                    gpu_types=[hw.gpu.model] if hw and hw.gpu else [],
                    gpu_counts=[hw.gpu.count] if hw and hw.gpu else [],
                    details={"model_id": m.id, **_dump(m)},
                )
            )
        return out

    async def list_regions(self) -> list[Region]:
        return [
            Region(provider=self.name, region_id=str(r.id), name=r.name, details=_dump(r))
            for r in await self._regions()
        ]

    async def _price_of(
        self, hardware_id: str, region_id: int, refresh: bool
    ) -> tuple[Stamped[Pricing] | None, str | None]:
        """The provider's price for one replica of a hardware in a region, kept for
        `catalog_cache_ttl` (prices move far more slowly than capacity). A failure is not kept."""
        try:
            got = await self._price_memo.get(
                (hardware_id, region_id), lambda: self.pricing(hardware_id, [(region_id, 1)]), refresh=refresh
            )
        except ProviderError as exc:
            return None, str(exc)
        return got, None

    async def list_offers(self, *, refresh: bool = False) -> list[Offer]:
        """Hardwares joined with each region's capacity, each priced by the provider's preview for
        one replica there. A failed price leaves that offer unpriced instead of failing the list.

        Capacity is read fresh on every call; prices are kept longer, so a warm call is the two
        catalogue reads at once. Only a price not yet kept needs a second round trip (it needs the
        catalogue's hardware and region ids), and those are all asked at once."""
        hardwares, regions = await asyncio.gather(self._catalog(refresh=True), self._regions())
        known = {hw.id for hw in hardwares}
        pairs = list(
            dict.fromkeys(
                (c.hardware_id, r.id) for r in regions for c in r.capacities if c.hardware_id in known
            )
        )
        answers = await asyncio.gather(*(self._price_of(hw_id, r_id, refresh) for hw_id, r_id in pairs))
        quotes = dict(zip(pairs, answers, strict=True))

        def offer(hw: Hardware, region: WireRegion | None, capacity: int | None) -> Offer:
            got, problem = quotes[(hw.id, region.id)] if region is not None else (None, None)
            quote = got.value if got is not None else None
            details: dict[str, Any] = {"hardware_name": hw.name}
            if region is not None:
                details.update(region_name=region.name, country_code=region.country_code, capacity=capacity)
            if quote is not None and quote.price_per_month is not None:
                details["price_per_month"] = quote.price_per_month
            if problem:
                details["price_error"] = problem
            return Offer(
                provider=self.name,
                kind="endpoint",
                offer_id=hw.id,
                gpu_name=hw.gpu.model if hw.gpu else hw.name,
                gpu_count=hw.gpu.count if hw.gpu else None,
                gpu_memory_gb=hw.gpu.memory if hw.gpu else None,
                vcpu=hw.cpu // 1000 if hw.cpu is not None else None,
                ram_gb=round(hw.ram / 1024, 1) if hw.ram is not None else None,
                region=str(region.id) if region is not None else None,
                price=quote.price_per_hour if quote else None,
                currency=(quote.currency_code or "USD") if quote else None,
                usd_per_hour=_usd(quote),
                price_as_of=got.at.isoformat(timespec="seconds") if got is not None else None,
                available=bool(capacity) and (region is None or (region.state or "ACTIVE") == "ACTIVE"),
                details=details,
            )

        out = []
        for hw in hardwares:
            placed = [(r, c.capacity) for r in regions for c in r.capacities if c.hardware_id == hw.id]
            out += [offer(hw, r, cap) for r, cap in placed] or [offer(hw, None, None)]
        return out

    async def list_resources(self) -> list[Resource]:
        body = await self.http.request("GET", INSTANCES)
        return [self.to_resource(_parse(Instance, i, "instance")) for i in _array(body, "instances")]

    async def _catalog(self, *, refresh: bool = False) -> list[Hardware]:
        """The hardware catalogue, kept for `catalog_cache_ttl` (list_offers always rereads it)."""
        return (await self._hardware_memo.get(None, self._hardwares, refresh=refresh)).value

    async def _hardware_or_none(self, hardware_id: str | None) -> Hardware | None:
        """The instance's hardware for GPU name and count, from the kept catalogue (read again
        once if the id is new to it); a failure only leaves them blank."""
        if not hardware_id:
            return None
        try:
            kept = self._hardware_memo.fresh(None) is not None
            found = next((h for h in await self._catalog() if h.id == hardware_id), None)
            if found is None and kept:
                found = next((h for h in await self._catalog(refresh=True) if h.id == hardware_id), None)
            return found
        except ProviderError:
            return None

    async def _catalog_or_none(self) -> list[Hardware] | None:
        try:
            return await self._catalog()
        except ProviderError:
            return None

    async def get_resource(self, resource_id: str, *, reveal_secrets: bool = False) -> Resource:
        """One request once the catalogue is kept (each wait_for_resource poll); the first call reads
        the instance and the catalogue at once."""
        if self._hardware_memo.fresh(None) is None:
            inst, _ = await asyncio.gather(self._instance(resource_id), self._catalog_or_none())
        else:
            inst = await self._instance(resource_id)
        return self.to_resource(inst, await self._hardware_or_none(inst.hardware_id), reveal=reveal_secrets)

    # ---- provider reads ------------------------------------------------------------------------
    async def list_registries(self) -> list[SesterceRegistry]:
        return [self.to_registry(r) for r in await self._registries()]

    async def quote(self, data: SesterceQuoteInput) -> SesterceQuote:
        hw = await self._check_hardware(data.hardware_id)
        await self._check_regions(hw, data.regions)
        p = await self.pricing(hw.id, [(r.region_id, r.max) for r in data.regions])
        replicas = sum(r.max for r in data.regions)
        return SesterceQuote(
            hardware_id=hw.id,
            hardware_name=hw.name,
            max_replicas=replicas,
            gpus=hw.gpu.count * replicas if hw.gpu else None,
            currency=p.currency_code,
            price_per_hour=p.price_per_hour,
            price_per_month=p.price_per_month,
            usd_per_hour=_usd(p),
            regions=[{"region_id": r.region_id, "max": r.max} for r in data.regions],
        )

    # ---- checks before anything is sent -------------------------------------------------------
    async def _check_hardware(self, hardware_id: str) -> Hardware:
        hardwares = await self._hardwares()
        for hw in hardwares:
            if hw.id == hardware_id:
                return hw
        names = "; ".join(f"{h.id} ({h.name})" for h in hardwares) or "none"
        raise InvalidInput(
            f"no hardware {hardware_id!r}. Available: {names}.", provider=self.name, hint="See list_offers."
        )

    async def _check_regions(self, hw: Hardware, regions: list[SesterceRegionScaling]) -> list[str]:
        """Refuse unknown regions and regions without this hardware; warn about thin capacity."""
        known = {r.id: r for r in await self._regions()}
        warnings = []
        for want in regions:
            region = known.get(want.region_id)
            if region is None:
                listed = ", ".join(f"{r.id} ({r.name})" for r in known.values()) or "none"
                raise InvalidInput(f"no region {want.region_id}. Available: {listed}.", provider=self.name)
            cap = next((c.capacity for c in region.capacities if c.hardware_id == hw.id), None)
            if cap is None:
                having = [
                    f"{r.id} ({r.name})"
                    for r in known.values()
                    if any(c.hardware_id == hw.id for c in r.capacities)
                ]
                raise InvalidInput(
                    f"region {region.id} ({region.name}) does not offer {hw.name}. "
                    f"Regions that do: {', '.join(having) or 'none'}.",
                    provider=self.name,
                )
            if (region.state or "ACTIVE") != "ACTIVE":
                warnings.append(f"region {region.id} ({region.name}) is {region.state}.")
            if cap < want.max:
                warnings.append(
                    f"region {region.id} ({region.name}) reports capacity {cap} for {hw.name}, "
                    f"below the requested max of {want.max}; pods beyond it may not deploy."
                )
        return warnings

    async def _resolve_model(self, model_id: str) -> WireModel:
        models = await self._models()
        for m in models:
            if model_id in (m.id, m.name):
                return m
        names = "; ".join(f"{m.id} ({m.name})" for m in models) or "none"
        raise InvalidInput(
            f"no model {model_id!r}. Available: {names}.", provider=self.name, hint="See list_templates."
        )

    async def _check_registry(self, registry_id: str) -> Registry:
        registries = await self._registries()
        for reg in registries:
            if reg.id == registry_id:
                return reg
        raise NotFound(
            f"no registry {registry_id!r}", provider=self.name, hint="See sesterce_list_registries."
        )

    async def _prices(
        self, hw: Hardware, scales: list[tuple[int, int, int]]
    ) -> tuple[float | None, float | None, list[str]]:
        """USD/hour at the minimum and maximum of `(region_id, min, max)`, and the plan's price
        lines. A failing preview leaves the cost unknown (which policy caps then refuse)."""
        try:
            at_max = await self.pricing(hw.id, [(r, hi) for r, _, hi in scales])
            lows = [(r, lo) for r, lo, _ in scales if lo > 0]
            at_min = await self.pricing(hw.id, lows) if lows else None
        except ProviderError as exc:
            return None, None, [f"the Sesterce price preview failed ({exc}); the cost is unknown."]
        replicas = sum(hi for _, _, hi in scales)
        lines = [f"Sesterce price preview at maximum scale ({replicas} replicas): {_money(at_max)}."]
        if at_min is not None:
            lines.append(f"At minimum scale ({sum(lo for _, lo, _ in scales)} replicas): {_money(at_min)}.")
        if _usd(at_max) is None:
            lines.append(
                f"The preview is in {at_max.currency_code}, not USD: USD policy caps cannot check it."
            )
            return None, None, lines
        usd_min = _usd(at_min) if at_min is not None else 0.0
        return usd_min, _usd(at_max), lines

    # ---- instance mutations ------------------------------------------------------------------
    def _finish_instance(self, hw: Hardware | None) -> Callable[[Any], Awaitable[Any]]:
        """A `finish` for create and PATCH: they answer the short instance shape, so read the
        detail (regions, replicas) when possible. The write already happened: an unreadable
        answer or a failed read is reported, never turned into a failure of the call."""

        async def finish(answer: Any) -> Any:
            try:
                inst = _parse(Instance, answer, "instance")
            except MalformedResponse as exc:
                return {"answer": self.mask(answer), "note": str(exc)}
            try:
                return await self.get_resource(inst.id)
            except ProviderError:
                return self.to_resource(inst, hw)

        return finish

    async def plan_create(self, data: SesterceCreateEndpoint) -> Plan:
        hw = await self._check_hardware(data.hardware_id)
        warnings = await self._check_regions(hw, data.regions)
        model = await self._resolve_model(data.model_id) if data.model_id else None
        if data.registry_id:
            await self._check_registry(data.registry_id)
        port = data.container_port or (model.port if model else None)
        if port is None:
            raise InvalidInput(
                "container_port is required when the model does not state its port.", provider=self.name
            )
        body = {
            "modelId": model.id if model else None,
            "containerPort": port,
            "name": data.name,
            "description": data.description,
            "autoScalingConfigurations": [_dump(r.to_wire()) for r in data.regions],
            "podLifetime": data.pod_lifetime,
            "envs": data.envs,
            "hardwareId": hw.id,
            "startupCommand": data.startup_command,
            "registryId": data.registry_id,
            "apiKeyIds": data.api_key_ids,
        }
        usd_min, usd_max, lines = await self._prices(hw, [(r.region_id, r.min, r.max) for r in data.regions])
        spread = ", ".join(f"region {r.region_id}: {r.min}-{r.max}" for r in data.regions)
        what = model.name if model else f"the image of registry {data.registry_id}"
        return self.plan(
            operation="sesterce_create_endpoint",
            action=f"Create Sesterce inference instance {data.name!r} running {what} on {hw.name} "
            f"({spread} replicas).",
            target=data.name,
            request=WireRequest(method="POST", path=INSTANCES, json_body=body),
            finish=self._finish_instance(hw),
            reversible=True,
            reversibility="stop it with stop_resource or delete it with delete_resource; "
            "it is billed per hour while pods run.",
            usd_per_hour=usd_min,
            usd_per_hour_max=usd_max,
            price_source=PRICE_SOURCE,
            gpus=(hw.gpu.count if hw.gpu else 0) * sum(r.max for r in data.regions),
            gpu_name=hw.gpu.model if hw.gpu else None,
            warnings=lines + warnings,
        )

    async def _patch_body(
        self,
        inst: Instance,
        scaling: list[AutoScalingConfiguration],
        *,
        model_id: str | None = None,
        registry_id: str | None = None,
    ) -> dict[str, Any]:
        """The documented full PATCH body from the current detail (see the module docstring)."""
        body: dict[str, Any] = {
            "modelId": inst.model_id,
            "containerPort": inst.container_port,
            "description": inst.description,
            "autoScalingConfigurations": [_dump(c) for c in scaling],
            "podLifetime": inst.pod_lifetime,
            "envs": inst.envs,
            "hardwareId": inst.hardware_id,
            "startupCommand": inst.startup_command,
            "registryId": inst.registry_id,
            "apiKeyIds": inst.api_keys_ids,
        }
        if model_id is not None or registry_id is not None:  # the caller says what it runs
            body["modelId"], body["registryId"] = model_id, registry_id
            return body
        reported = inst.model_extra or {}
        if "modelId" in reported or "registryId" in reported or inst.model_id or inst.registry_id:
            return body
        created = await self._created_body(inst.id)
        if created is not None and "modelId" in created and "registryId" in created:
            body["modelId"], body["registryId"] = created["modelId"], created["registryId"]
            return body
        raise InvalidInput(
            f"Sesterce's update requires modelId and registryId, but neither the instance detail nor this "
            f"tool's journal knows them for {inst.id} (it was not created through this tool). Nothing was "
            "sent. Call sesterce_update_endpoint with model_id (the catalogue model it runs) or registry_id "
            "(the registry of its image), with the change you want; the other one is sent as null.",
            provider=self.name,
        )

    async def _created_body(self, instance_id: str) -> dict[str, Any] | None:
        """The body this tool sent to create the instance, if it did."""
        if self.journal is None:
            return None
        row = await self.journal.aio.created_row(self.name, instance_id)
        return row.get("body") if row else None

    async def plan_update(self, data: UpdateInput) -> Plan:
        self.reject_fields(data, ("name", "gpu_type", "gpu_count"), "update_resource")
        inst = await self._instance(data.resource_id)
        current = [
            AutoScalingConfiguration(region_id=c.region_id, scale=c.scale or Scale())
            for c in inst.containers or []
        ]
        lo, hi = data.min_replicas, data.max_replicas
        if data.replicas is not None:
            if lo is not None or hi is not None:
                raise InvalidInput("give either replicas or min/max_replicas, not both.", provider=self.name)
            if data.replicas < 1:
                raise InvalidInput(
                    "replicas must be at least 1; use stop_resource to stop it.", provider=self.name
                )
            lo = hi = data.replicas
        scaling = current
        if lo is not None or hi is not None:
            if not current:
                raise InvalidInput(
                    f"instance {inst.id} reports no regions to scale; use sesterce_update_endpoint with regions.",
                    provider=self.name,
                )
            scaling = []
            for c in current:
                scale = c.scale.model_copy(
                    update={
                        "min": c.scale.min if lo is None else lo,
                        "max": c.scale.max if hi is None else hi,
                    }
                )
                if scale.min is not None and scale.max is not None and scale.min > scale.max:
                    raise InvalidInput(
                        f"region {c.region_id}: min {scale.min} would exceed max {scale.max}.",
                        provider=self.name,
                    )
                scaling.append(c.model_copy(update={"scale": scale}))
        body = await self._patch_body(inst, scaling)
        changes = []
        if data.description is not None:
            body["description"] = data.description
            changes.append(f"description={data.description!r}")
        if lo is not None or hi is not None:
            bounds = ", ".join(f"{k}={v}" for k, v in (("min", lo), ("max", hi)) if v is not None)
            total = sum(c.scale.max or 0 for c in scaling)
            changes.append(
                f"{bounds} replicas in each of its {len(scaling)} region(s) "
                f"({', '.join(str(c.region_id) for c in scaling)}), up to {total} replicas in total"
            )
        return await self._plan_patch(inst, body, "update_resource", "; ".join(changes), [])

    async def plan_update_endpoint(self, data: SesterceUpdateEndpoint) -> Plan:
        given = {f: getattr(data, f) for f in UPDATE_KEYS if getattr(data, f) is not None}
        if not given:
            raise InvalidInput(
                "sesterce_update_endpoint: give at least one field to change.", provider=self.name
            )
        inst = await self._instance(data.resource_id)
        current = [
            AutoScalingConfiguration(region_id=c.region_id, scale=c.scale or Scale())
            for c in inst.containers or []
        ]
        model = await self._resolve_model(data.model_id) if data.model_id is not None else None
        if data.registry_id is not None:
            await self._check_registry(data.registry_id)
        body = await self._patch_body(
            inst, current, model_id=model.id if model else None, registry_id=data.registry_id
        )
        for field, value in given.items():
            if field not in ("model_id", "registry_id"):
                body[UPDATE_KEYS[field]] = value
        warnings: list[str] = []
        if data.hardware_id is not None or data.regions is not None:
            hw_id = data.hardware_id or inst.hardware_id
            if not hw_id:
                raise InvalidInput("the instance reports no hardware; give hardware_id.", provider=self.name)
            regions = data.regions or [
                SesterceRegionScaling(region_id=c.region_id, min=c.scale.min or 0, max=c.scale.max or 1)
                for c in current
            ]
            warnings += await self._check_regions(await self._check_hardware(hw_id), regions)
        if data.regions is not None:
            body["autoScalingConfigurations"] = [_dump(r.to_wire()) for r in data.regions]
        changes = []
        for field, value in given.items():
            if field == "regions":
                changes.append(
                    "regions " + ", ".join(f"{r.region_id}: {r.min}-{r.max}" for r in data.regions or [])
                )
            elif field == "envs":
                changes.append(f"envs ({', '.join(value) or 'none'}; values hidden)")
            else:
                changes.append(f"{field}={value!r}")
        return await self._plan_patch(inst, body, "sesterce_update_endpoint", "; ".join(changes), warnings)

    async def _plan_patch(
        self, inst: Instance, body: dict[str, Any], operation: str, changes: str, warnings: list[str]
    ) -> Plan:
        hw = await self._check_hardware(body["hardwareId"]) if body.get("hardwareId") else None
        scales = [
            (c["regionId"], c["scale"].get("min") or 0, c["scale"].get("max") or 1)
            for c in body["autoScalingConfigurations"]
        ]
        usd_min = usd_max = None
        lines: list[str] = []
        if hw is not None and scales:
            usd_min, usd_max, lines = await self._prices(hw, scales)
        return self.plan(
            operation=operation,
            action=f"Update Sesterce instance {inst.name or inst.id}: {changes}.",
            target=inst.id,
            request=WireRequest(method="PATCH", path=f"{INSTANCES}/{inst.id}", json_body=body),
            finish=self._finish_instance(hw),
            reversible=True,
            reversibility="update it again with the previous values (shown in get_resource details).",
            usd_per_hour=usd_min,
            usd_per_hour_max=usd_max,
            price_source=PRICE_SOURCE,
            gpus=(hw.gpu.count if hw and hw.gpu else 0) * sum(hi for _, _, hi in scales) if hw else None,
            gpu_name=hw.gpu.model if hw and hw.gpu else None,
            warnings=lines + warnings,
        )

    def _refresh(self, resource_id: str, verb: str) -> Callable[[Any], Awaitable[Any]]:
        """A `finish` for 204 answers: the instance as it is now, or a plain note if it cannot be
        read (the request itself succeeded, so a failed read must not turn it into a failure)."""

        async def finish(answer: Any) -> Any:
            try:
                return await self.get_resource(resource_id)
            except ProviderError:
                return {"resource_id": resource_id, verb: True}

        return finish

    async def plan_stop(self, data: StopInput) -> Plan:
        inst = await self._instance(data.resource_id)
        return self.plan(
            operation="stop_resource",
            action=f"Stop Sesterce instance {inst.name or inst.id} (now {inst.status}); its pods are released.",
            target=inst.id,
            request=WireRequest(method="POST", path=f"{INSTANCES}/{inst.id}/stop"),
            finish=self._refresh(inst.id, "stopped"),
            reversible=True,
            reversibility="start it again with start_resource.",
        )

    async def plan_start(self, resource_id: str) -> Plan:
        inst = await self._instance(resource_id)
        hw = await self._hardware_or_none(inst.hardware_id)
        scales = [(c.region_id, c.scale.min or 0, c.scale.max or 1) for c in inst.containers or [] if c.scale]
        usd_min = usd_max = None
        lines: list[str] = []
        if hw is not None and scales:
            usd_min, usd_max, lines = await self._prices(hw, scales)
        return self.plan(
            operation="start_resource",
            action=f"Start Sesterce instance {inst.name or inst.id} (now {inst.status}); billing resumes.",
            target=inst.id,
            request=WireRequest(method="POST", path=f"{INSTANCES}/{inst.id}/start"),
            finish=self._refresh(inst.id, "started"),
            reversible=True,
            reversibility="stop it again with stop_resource.",
            usd_per_hour=usd_min,
            usd_per_hour_max=usd_max,
            price_source=PRICE_SOURCE,
            gpus=(hw.gpu.count if hw.gpu else 0) * sum(hi for _, _, hi in scales) if hw else None,
            gpu_name=hw.gpu.model if hw and hw.gpu else None,
            warnings=lines,
        )

    async def plan_delete(self, resource_id: str) -> Plan:
        inst = await self._instance(resource_id)

        async def finish(answer: Any) -> Any:
            return answer if answer is not None else {"deleted": inst.id}

        return self.plan(
            operation="delete_resource",
            action=f"Delete Sesterce instance {inst.name or inst.id} permanently.",
            target=inst.id,
            request=WireRequest(method="DELETE", path=f"{INSTANCES}/{inst.id}"),
            finish=finish,
            reversible=False,
            reversibility="deleting an instance is permanent; its address stops answering.",
            warnings=["DELETE is not on Sesterce's API page; the official sesterce-cli uses it."],
        )

    # ---- registry mutations ------------------------------------------------------------------
    async def _finish_registry(self, answer: Any) -> SesterceRegistry:
        return self.to_registry(_parse(Registry, answer, "registry"))

    async def plan_create_registry(self, data: SesterceCreateRegistry) -> Plan:
        body = {"url": data.url, "username": data.username, "password": data.password, "name": data.name}
        return self.plan(
            operation="sesterce_create_registry",
            action=f"Create Sesterce registry {data.name!r} for {data.url} as user {data.username!r}.",
            target=data.name,
            request=WireRequest(method="POST", path=REGISTRIES, json_body=body),
            finish=self._finish_registry,
            reversible=True,
            reversibility="delete it with sesterce_delete_registry. Registries cost nothing.",
        )

    async def plan_update_registry(self, data: SesterceUpdateRegistry) -> Plan:
        reg = await self._check_registry(data.registry_id)

        async def finish(answer: Any) -> SesterceRegistry:
            # 204: the registry as it now is, from what was sent (the password is never kept).
            if answer is not None:
                return await self._finish_registry(answer)
            return self.to_registry(reg.model_copy(update={"url": data.url, "username": data.username}))

        return self.plan(
            operation="sesterce_update_registry",
            action=f"Update Sesterce registry {reg.name or reg.id}: url {data.url}, user {data.username!r}, "
            "new password.",
            target=reg.id,
            request=WireRequest(
                method="PATCH",
                path=f"{REGISTRIES}/{reg.id}",
                json_body={"url": data.url, "username": data.username, "password": data.password},
            ),
            finish=finish,
            reversible=True,
            reversibility="update it again with the previous url, user name and password.",
        )

    async def plan_delete_registry(self, data: SesterceRegistryRef) -> Plan:
        reg = await self._check_registry(data.registry_id)

        async def finish(answer: Any) -> Any:
            return {"deleted": reg.id, "name": reg.name}

        return self.plan(
            operation="sesterce_delete_registry",
            action=f"Delete Sesterce registry {reg.name or reg.id} ({reg.url}).",
            target=reg.id,
            request=WireRequest(method="DELETE", path=f"{REGISTRIES}/{reg.id}"),
            finish=finish,
            reversible=False,
            reversibility="its credentials are gone; instances that pull from it can no longer redeploy.",
        )


# ---- provider-only operations -----------------------------------------------------------------
async def _price_preview(tk: Any, data: SesterceQuoteInput, progress: Progress | None) -> SesterceQuote:
    return await SesterceProvider.of(tk).quote(data)


async def _list_registries(tk: Any, data: NoInput, progress: Progress | None) -> Listing[SesterceRegistry]:
    items = await SesterceProvider.of(tk).list_registries()
    return Listing[SesterceRegistry](items=items, total=len(items))


async def _plan_create_endpoint(tk: Any, data: SesterceCreateEndpoint) -> Plan:
    return await SesterceProvider.of(tk).plan_create(data)


async def _plan_update_endpoint(tk: Any, data: SesterceUpdateEndpoint) -> Plan:
    return await SesterceProvider.of(tk).plan_update_endpoint(data)


async def _plan_create_registry(tk: Any, data: SesterceCreateRegistry) -> Plan:
    return await SesterceProvider.of(tk).plan_create_registry(data)


async def _plan_update_registry(tk: Any, data: SesterceUpdateRegistry) -> Plan:
    return await SesterceProvider.of(tk).plan_update_registry(data)


async def _plan_delete_registry(tk: Any, data: SesterceRegistryRef) -> Plan:
    return await SesterceProvider.of(tk).plan_delete_registry(data)


SesterceProvider.operations = [
    Operation(
        name="sesterce_create_endpoint",
        title="Create a Sesterce inference instance",
        description="Create a Sesterce AI inference instance: a model (model_id from list_templates) or your own "
        "image (registry_id) on a hardware (hardware_id = offer_id from list_offers), in regions each with its "
        "own autoscaling. The plan shows Sesterce's price at maximum scale. Costs money per hour while pods "
        "run; deploys in minutes (wait_for_resource).",
        input=SesterceCreateEndpoint,
        effect="create",
        planner=_plan_create_endpoint,
        provider="sesterce",
        aliases=("sesterce-create",),
    ),
    Operation(
        name="sesterce_update_endpoint",
        toolset="sesterce_admin",
        title="Update a Sesterce inference instance",
        description="Change any setting of a Sesterce inference instance: model_id, hardware_id, the regions "
        "and their autoscaling (replaces all regions), container_port, startup_command, envs, pod_lifetime, "
        "registry_id, api_key_ids, description. Fields not given keep their current values. For plain "
        "scaling, update_resource is simpler. The plan shows the new price preview.",
        input=SesterceUpdateEndpoint,
        effect="update",
        planner=_plan_update_endpoint,
        provider="sesterce",
    ),
    Operation(
        name="sesterce_price_preview",
        toolset="sesterce_admin",
        title="Preview a Sesterce price",
        description="Ask Sesterce what an inference instance would cost per hour and per month for a hardware "
        "(offer_id) and the maximum replicas per region. Changes nothing, costs nothing.",
        input=SesterceQuoteInput,
        output=SesterceQuote,
        effect="read",
        handler=_price_preview,
        provider="sesterce",
        aliases=("sesterce-price",),
    ),
    Operation(
        name="sesterce_list_registries",
        toolset="sesterce_admin",
        title="List Sesterce registries",
        description="List the container registries saved at Sesterce (id, name, image url, user name) for "
        "deploying private images with sesterce_create_endpoint(registry_id=...). Passwords are never "
        "shown.",
        input=NoInput,
        output=Listing[SesterceRegistry],
        effect="read",
        handler=_list_registries,
        provider="sesterce",
        aliases=("sesterce-registries",),
    ),
    Operation(
        name="sesterce_create_registry",
        toolset="sesterce_admin",
        title="Create a Sesterce registry",
        description="Save a private container registry at Sesterce (name, image url, user name, password) so "
        "an inference instance can pull a custom image. The password is sent to Sesterce only and never "
        "shown or journaled. Free.",
        input=SesterceCreateRegistry,
        effect="create",
        planner=_plan_create_registry,
        provider="sesterce",
    ),
    Operation(
        name="sesterce_update_registry",
        toolset="sesterce_admin",
        title="Update a Sesterce registry",
        description="Replace a Sesterce registry's image url, user name and password (all three are "
        "required). The password is never shown or journaled.",
        input=SesterceUpdateRegistry,
        effect="update",
        planner=_plan_update_registry,
        provider="sesterce",
    ),
    Operation(
        name="sesterce_delete_registry",
        toolset="sesterce_admin",
        title="Delete a Sesterce registry",
        description="Delete a saved Sesterce registry and its credentials. Instances using it can no longer "
        "pull their image. Cannot be undone.",
        input=SesterceRegistryRef,
        effect="destroy",
        planner=_plan_delete_registry,
        provider="sesterce",
    ),
]
