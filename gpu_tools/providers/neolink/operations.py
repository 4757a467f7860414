"""NeoLink AI: the provider-only operation declarations and their handlers and planners."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from gpu_tools.errors import InvalidInput
from gpu_tools.models import Listing, Offer, Plan, WireRequest
from gpu_tools.operations import Operation, Progress
from gpu_tools.providers.neolink.adapter import NeolinkProvider
from gpu_tools.providers.neolink.inputs import NeolinkCreateInstance, NeolinkListSkus
from gpu_tools.providers.neolink.wire import (
    BILLING_TYPES,
    COST_TIME,
    CURRENCY,
    TERM_HOURS,
    TERM_WORD,
    CostBody,
    CreateBody,
    VolumeBody,
)


# ---- provider operations ----------------------------------------------------------------------
async def _plan_create(tk: Any, data: NeolinkCreateInstance) -> Plan:
    adapter = NeolinkProvider.of(tk)
    region = await adapter.placement(data)
    cluster = region.cluster_name
    skus = await adapter.skus(region.id)
    sku = next((s for s in skus if s.skus_id == data.gpu_sku_id), None)
    if sku is None:
        listed = ", ".join(f"{s.skus_id} ({s.gpu_counts or 1}x {s.name})" for s in skus) or "none"
        raise InvalidInput(
            f"GPU SKU {data.gpu_sku_id!r} is not offered in {region.region or region.id}. "
            f"SKUs there: {listed}.",
            provider=adapter.name,
        )
    kind = data.cost_code
    billing = BILLING_TYPES[kind]
    if sku.selling_types() and kind not in sku.selling_types():
        sold = ", ".join(BILLING_TYPES.get(t, t) for t in sorted(sku.selling_types()))
        raise InvalidInput(
            f"GPU SKU {sku.skus_id} ({sku.name}) is sold {sold}, not {billing}; set cost_type to match "
            "or pick another SKU.",
            provider=adapter.name,
        )
    namespace = adapter.settings.neolink_namespace or ""
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

    usd = adapter.usd_per_hour(sku.price)
    warnings: list[str] = []
    if sku.remain_gpu_count is not None and sku.remain_gpu_count < (sku.gpu_counts or 1):
        warnings.append(f"only {sku.remain_gpu_count} GPUs of this SKU are left; creation may fail.")
    term = ""
    if kind != "1":
        match = COST_TIME.match(data.cost_time or "")
        # checked by the input model
        if match is None:
            raise RuntimeError("internal error: expected match is not None")
        count, unit = int(match.group(2)), match.group(3)
        plural = "s" if count > 1 else ""
        term = f" for a prepaid term of {data.cost_time} ({count} {TERM_WORD[unit]}{plural})"
        if sku.price is not None:
            total = sku.price * TERM_HOURS[unit] * count
            usd_total = total * adapter.settings.usd_per_cny
            warnings.append(
                f"{billing} billing is prepaid: about {total:,.0f} {CURRENCY} (~${usd_total:,.0f}, an "
                "estimate) for the whole term, charged whether or not the instance runs."
            )
    gpus = sku.gpu_counts or 1
    price_text = f"{sku.price:g} {CURRENCY}/hour" if sku.price is not None else "an unlisted price"
    return adapter.plan(
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
        finish=lambda answer: adapter.finish_instance(answer, cluster),
        reversible=kind == "1",
        reversibility=(
            "delete it with delete_resource; GPU time is billed while it runs."
            if kind == "1"
            else f"the {billing} term is paid up front; deleting the instance early may not refund it."
        ),
        usd_per_hour=usd,
        price_source=adapter.price_source(sku) if sku.price is not None else "the SKU lists no price",
        gpus=gpus,
        gpu_name=sku.name,
        warnings=warnings,
    )


async def _list_skus(tk: Any, data: NeolinkListSkus, progress: Progress | None) -> Listing[Offer]:
    from gpu_tools.gpus import with_usd

    items = [with_usd(o) for o in await NeolinkProvider.of(tk).list_skus(data)]
    return Listing[Offer](items=items, total=len(items))


OPERATIONS: list[Operation] = [
    Operation(
        name="neolink_list_skus",
        title="List NeoLink GPU SKUs of a region",
        description="List the GPU SKUs NeoLink sells in one region: GPU, count, memory, CPU, RAM, billing types, "
        "price in CNY (USD estimated), GPUs left. offer_id is neolink_create_instance's gpu_sku_id.",
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
        description="A container with SSH and JupyterLab from a GPU SKU (gpu_sku_id = a list_offers offer_id) "
        "and an image, pay-as-you-go or prepaid. Creating until Running (wait_for_resource); stop_resource powers "
        "it off, optionally saving a snapshot. Costs GPU time (CNY, USD estimated); prepaid terms up front.",
        input=NeolinkCreateInstance,
        effect="create",
        planner=_plan_create,
        provider="neolink",
        aliases=("neolink-create",),
    ),
]

__all__ = ["NeolinkCreateInstance", "NeolinkListSkus", "NeolinkProvider"]
