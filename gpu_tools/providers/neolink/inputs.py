"""NeoLink AI: tool arguments, and the results of the provider-only operations."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, model_validator

from gpu_tools.operations import CreateInput, OpInput
from gpu_tools.providers.neolink.wire import (
    BILLING_CODES,
    BILLING_TYPES,
    COST_TIME,
    TERM_UNIT,
    TERM_WORD,
    Billing,
    Str,
    _billing_name,
    _term,
)


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
