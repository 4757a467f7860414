"""NeoLink AI: the documented JSON as pydantic models, and the documented paths and values."""

import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from gpu_tools.models import Status
from gpu_tools.providers.wire import Wire

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
