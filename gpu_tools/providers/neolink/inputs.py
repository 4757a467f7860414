"""NeoLink AI: tool arguments, and the results of the provider-only operations."""

from typing import Annotated, Self

from pydantic import BeforeValidator, Field, model_validator

from gpu_tools.operations import NAME_MAX, URL_MAX, CreateInput, OpInput, ResourceId
from gpu_tools.providers.neolink.wire import (
    BILLING_CODES,
    BILLING_TYPES,
    COST_TIME,
    TERM_UNIT,
    TERM_WORD,
    Billing,
    _billing_name,
    _term,
    _to_str,
)

# An id the provider also writes as a number ("1" or 1).
Id = Annotated[ResourceId, BeforeValidator(_to_str)]


# ---- operation inputs ------------------------------------------------------------------------
class NeolinkCreateInstance(CreateInput):
    """Create a NeoLink compute instance (argument names are the documented fields, Cost and
    VolumeMount flattened)."""

    display_name: str = Field(description="Instance name (displayName).", min_length=1, max_length=NAME_MAX)
    image: str = Field(
        description="Container image, official or private.",
        min_length=1,
        max_length=URL_MAX,
    )
    gpu_sku_id: Id = Field(
        description="GPU SKU id (Cost.GPUSKUID): an offer_id from list_offers.",
        min_length=1,
    )
    cost_type: Annotated[Billing, BeforeValidator(_billing_name)] = Field(
        "pay_as_you_go",
        description="Billing (Cost.CostType); one the SKU is sold with.",
    )
    cost_time: Annotated[str | None, BeforeValidator(_term)] = Field(
        None,
        description="Prepaid term (Cost.CostTime): '3 days', '2 weeks', '1 month' (or 3D, 2W, 1M; + extends). "
        "Not for pay_as_you_go.",
        max_length=40,
    )
    coupon_id: ResourceId | None = Field(None, description="Coupon id (Cost.CouponID); pay-as-you-go only.")
    disk_sku_id: Id = Field(
        "1",
        description="Disk SKU id (Cost.DiskSKUID); only 1 exists.",
        min_length=1,
    )
    volume_path: str = Field(
        "/root/data",
        description="Data disk mount path (VolumeMount.PathInContainer).",
        min_length=1,
        max_length=1024,
    )
    volume_size: int | None = Field(
        None, ge=1, le=100_000, description="Data disk size in GB (VolumeMount.Size)."
    )
    volume_type: str | None = Field(
        None, description="Data disk type (VolumeMount.Type).", max_length=NAME_MAX
    )
    region: str | None = Field(
        None,
        description="Region id, name or cluster from list_regions (default: Beijing Zone 1).",
        max_length=NAME_MAX,
    )
    cluster_name: str | None = Field(
        None,
        description="Cluster (the path's clusterName); default: the region's.",
        min_length=1,
        max_length=NAME_MAX,
    )

    @model_validator(mode="after")
    def _check_billing(self) -> Self:
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
    region_id: ResourceId = Field(
        description="Region id, name or cluster from list_regions.",
        min_length=1,
    )
    available_only: bool = Field(False, description="Only SKUs with enough GPUs left to rent now.")
