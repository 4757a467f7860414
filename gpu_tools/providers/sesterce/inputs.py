"""Sesterce Cloud: tool arguments, and the results of the provider-only operations."""

from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gpu_tools.models import (
    Model,
    Result,
)
from gpu_tools.operations import (
    MAX_REPLICAS,
    NAME_MAX,
    TEXT_MAX,
    URL_MAX,
    CreateInput,
    LongText,
    MutationInput,
    OpInput,
    ResourceId,
    ShortText,
)
from gpu_tools.providers.sesterce.wire import (
    COMPACT_REGION,
    AutoScalingConfiguration,
    HttpTrigger,
    Scale,
    Threshold,
    Triggers,
)


# ---- operation inputs ------------------------------------------------------------------------
class SesterceRegionScaling(BaseModel):
    """A region and its autoscaling (an `autoScalingConfigurations` entry)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    region_id: int = Field(description="Region id from list_regions, e.g. 18.", ge=0, le=10**6)
    min: int = Field(1, ge=0, description="Minimum replicas here (0: scale to zero).", le=MAX_REPLICAS)
    max: int = Field(1, ge=1, description="Maximum replicas here (the price is for this).", le=MAX_REPLICAS)
    cooldown_period: int | None = Field(
        300, ge=0, description="Seconds between two scaling events.", le=86400
    )
    cpu_threshold: int | None = Field(None, ge=1, le=100, description="Scale up above this CPU %.")
    gpu_memory_threshold: int | None = Field(
        None, ge=1, le=100, description="Scale up above this GPU memory %."
    )
    gpu_utilization_threshold: int | None = Field(
        None, ge=1, le=100, description="Scale up above this GPU use %."
    )
    memory_threshold: int | None = Field(None, ge=1, le=100, description="Scale up above this RAM %.")
    http_rate: int | None = Field(
        None, ge=1, description="Scale up above this many requests per window.", le=10**6
    )
    http_window: int | None = Field(None, ge=1, description="The HTTP trigger's window in seconds.", le=86400)

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
    def _check(self) -> Self:
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
    'Regions and their autoscaling, e.g. [{"region_id": 18, "min": 1, "max": 2}] (ids from list_regions; '
    "the magic also takes 18:1-2,78:1-3)."
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
    description: str | None = Field(None, description="Optional description.", max_length=TEXT_MAX)
    model_id: ResourceId | None = Field(
        None,
        description="Model id or name (list_templates); or registry_id for your own image.",
    )
    hardware_id: ResourceId = Field(description="The offer_id of a sesterce offer from list_offers.")
    regions: list[SesterceRegionScaling] = Field(min_length=1, description=REGIONS_HELP, max_length=50)
    container_port: int | None = Field(
        None, ge=1, le=65535, description="Container port (default: the model's)."
    )
    registry_id: ResourceId | None = Field(
        None, description="Registry id (sesterce_list_registries), for a private image."
    )
    startup_command: str | None = Field(
        None, description="Command run when the container starts.", max_length=TEXT_MAX
    )
    envs: dict[ShortText, LongText] | None = Field(
        None, description="Environment variables (masked in outputs).", max_length=100
    )
    pod_lifetime: int | None = Field(
        None, ge=0, description="Seconds an idle pod lives before scale-down.", le=7 * 86400
    )
    api_key_ids: list[ResourceId] | None = Field(
        None, description="Sesterce API key ids allowed to call it.", max_length=50
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        _unique_regions(self.regions)
        if not self.model_id and not self.registry_id:
            raise ValueError("give model_id (a catalogue model) or registry_id (your own image)")
        return self


class SesterceUpdateEndpoint(MutationInput):
    """Change any documented field of an instance; what is not given keeps its current value."""

    positional: ClassVar[tuple[str, ...]] = ("resource_id",)

    resource_id: ResourceId = Field(
        min_length=1, description="The instance id (resource_id from list_resources)."
    )
    description: str | None = Field(None, description="New description.", max_length=TEXT_MAX)
    model_id: ResourceId | None = Field(None, description="New model id (or exact name) from list_templates.")
    hardware_id: ResourceId | None = Field(None, description="New hardware id (offer_id from list_offers).")
    regions: list[SesterceRegionScaling] | None = Field(
        None, description=REGIONS_HELP + " Replaces every region's configuration.", max_length=50
    )
    container_port: int | None = Field(None, ge=1, le=65535, description="New port the container listens on.")
    registry_id: ResourceId | None = Field(None, description="New registry id (sesterce_list_registries).")
    startup_command: str | None = Field(
        None, description="New command run when the container starts.", max_length=TEXT_MAX
    )
    envs: dict[ShortText, LongText] | None = Field(
        None, description="Replaces all environment variables.", max_length=100
    )
    pod_lifetime: int | None = Field(
        None, ge=0, description="New seconds an idle pod lives before scale-down.", le=7 * 86400
    )
    api_key_ids: list[ResourceId] | None = Field(
        None, description="Replaces the Sesterce API key ids allowed to call it.", max_length=50
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        _unique_regions(self.regions)
        return self


class SesterceRegistryInput(OpInput):
    url: str = Field(
        min_length=1,
        description="Image reference, e.g. docker.io/library/user/image:tag.",
        max_length=URL_MAX,
    )
    username: str = Field(min_length=1, description="Registry user name.", max_length=NAME_MAX)
    password: str = Field(
        min_length=1,
        description="Registry password or token. Sent to Sesterce only; never shown in any output.",
        json_schema_extra={"format": "password", "writeOnly": True},
        max_length=TEXT_MAX,
    )


class SesterceCreateRegistry(SesterceRegistryInput, CreateInput):
    positional: ClassVar[tuple[str, ...]] = ("name",)
    name: str = Field(min_length=1, max_length=200, description="Registry name.")


class SesterceUpdateRegistry(SesterceRegistryInput, MutationInput):
    positional: ClassVar[tuple[str, ...]] = ("registry_id",)
    registry_id: ResourceId = Field(min_length=1, description="Registry id from sesterce_list_registries.")


class SesterceRegistryRef(MutationInput):
    positional: ClassVar[tuple[str, ...]] = ("registry_id",)
    registry_id: ResourceId = Field(min_length=1, description="Registry id from sesterce_list_registries.")


class SesterceQuoteInput(OpInput):
    positional: ClassVar[tuple[str, ...]] = ("hardware_id",)
    hardware_id: ResourceId = Field(
        description="The offer_id of a sesterce offer from list_offers.", min_length=1
    )
    regions: list[SesterceRegionScaling] = Field(
        min_length=1,
        description=REGIONS_HELP + " Only region_id and max matter for the price.",
        max_length=50,
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
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
