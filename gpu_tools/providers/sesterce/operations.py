"""Sesterce Cloud: the provider-only operation declarations and their handlers and planners."""

from __future__ import annotations

from typing import Any

from gpu_tools.errors import InvalidInput
from gpu_tools.models import (
    Listing,
    Plan,
    WireRequest,
)
from gpu_tools.operations import (
    NoInput,
    Operation,
    Progress,
)
from gpu_tools.providers.sesterce.adapter import (
    SesterceProvider,
)
from gpu_tools.providers.sesterce.inputs import (
    SesterceCreateEndpoint,
    SesterceCreateRegistry,
    SesterceQuote,
    SesterceQuoteInput,
    SesterceRegionScaling,
    SesterceRegistry,
    SesterceRegistryRef,
    SesterceUpdateEndpoint,
    SesterceUpdateRegistry,
)
from gpu_tools.providers.sesterce.wire import (
    INSTANCES,
    PRICE_SOURCE,
    REGISTRIES,
    UPDATE_KEYS,
    AutoScalingConfiguration,
    Scale,
)


# ---- provider-only operations -----------------------------------------------------------------
async def _price_preview(tk: Any, data: SesterceQuoteInput, progress: Progress | None) -> SesterceQuote:
    return await SesterceProvider.of(tk).quote(data)


async def _list_registries(tk: Any, data: NoInput, progress: Progress | None) -> Listing[SesterceRegistry]:
    items = await SesterceProvider.of(tk).list_registries()
    return Listing[SesterceRegistry](items=items, total=len(items))


async def _plan_create_endpoint(tk: Any, data: SesterceCreateEndpoint) -> Plan:
    adapter = SesterceProvider.of(tk)
    hw = await adapter.check_hardware(data.hardware_id)
    warnings = await adapter.check_regions(hw, data.regions)
    model = await adapter.resolve_model(data.model_id) if data.model_id else None
    if data.registry_id:
        await adapter.check_registry(data.registry_id)
    port = data.container_port or (model.port if model else None)
    if port is None:
        raise InvalidInput(
            "container_port is required when the model does not state its port.", provider=adapter.name
        )
    body = {
        "modelId": model.id if model else None,
        "containerPort": port,
        "name": data.name,
        "description": data.description,
        "autoScalingConfigurations": [r.to_wire().dump() for r in data.regions],
        "podLifetime": data.pod_lifetime,
        "envs": data.envs,
        "hardwareId": hw.id,
        "startupCommand": data.startup_command,
        "registryId": data.registry_id,
        "apiKeyIds": data.api_key_ids,
    }
    usd_min, usd_max, lines = await adapter.prices(hw, [(r.region_id, r.min, r.max) for r in data.regions])
    spread = ", ".join(f"region {r.region_id}: {r.min}-{r.max}" for r in data.regions)
    what = model.name if model else f"the image of registry {data.registry_id}"
    return adapter.plan(
        operation="sesterce_create_endpoint",
        action=f"Create Sesterce inference instance {data.name!r} running {what} on {hw.name} "
        f"({spread} replicas).",
        target=data.name,
        request=WireRequest(method="POST", path=INSTANCES, json_body=body),
        finish=adapter._finish_instance(hw, f"POST {INSTANCES}"),
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


async def _plan_update_endpoint(tk: Any, data: SesterceUpdateEndpoint) -> Plan:
    adapter = SesterceProvider.of(tk)
    given = {f: getattr(data, f) for f in UPDATE_KEYS if getattr(data, f) is not None}
    if not given:
        raise InvalidInput(
            "sesterce_update_endpoint: give at least one field to change.", provider=adapter.name
        )
    inst = await adapter.instance(data.resource_id)
    current = [
        AutoScalingConfiguration(region_id=c.region_id, scale=c.scale or Scale())
        for c in inst.containers or []
    ]
    model = await adapter.resolve_model(data.model_id) if data.model_id is not None else None
    if data.registry_id is not None:
        await adapter.check_registry(data.registry_id)
    body = await adapter.patch_body(
        inst, current, model_id=model.id if model else None, registry_id=data.registry_id
    )
    for field, value in given.items():
        if field not in ("model_id", "registry_id"):
            body[UPDATE_KEYS[field]] = value
    warnings: list[str] = []
    if data.hardware_id is not None or data.regions is not None:
        hw_id = data.hardware_id or inst.hardware_id
        if not hw_id:
            raise InvalidInput("the instance reports no hardware; give hardware_id.", provider=adapter.name)
        regions = data.regions or [
            SesterceRegionScaling(region_id=c.region_id, min=c.scale.min or 0, max=c.scale.max or 1)
            for c in current
        ]
        warnings += await adapter.check_regions(await adapter.check_hardware(hw_id), regions)
    if data.regions is not None:
        body["autoScalingConfigurations"] = [r.to_wire().dump() for r in data.regions]
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
    return await adapter.plan_patch(inst, body, "sesterce_update_endpoint", "; ".join(changes), warnings)


async def _plan_create_registry(tk: Any, data: SesterceCreateRegistry) -> Plan:
    adapter = SesterceProvider.of(tk)
    body = {"url": data.url, "username": data.username, "password": data.password, "name": data.name}
    return adapter.plan(
        operation="sesterce_create_registry",
        action=f"Create Sesterce registry {data.name!r} for {data.url} as user {data.username!r}.",
        target=data.name,
        request=WireRequest(method="POST", path=REGISTRIES, json_body=body),
        finish=adapter.finish_registry(f"POST {REGISTRIES}"),
        reversible=True,
        reversibility="delete it with sesterce_delete_registry. Registries cost nothing.",
    )


async def _plan_update_registry(tk: Any, data: SesterceUpdateRegistry) -> Plan:
    adapter = SesterceProvider.of(tk)
    reg = await adapter.check_registry(data.registry_id)

    async def finish(answer: Any) -> SesterceRegistry:
        # 204: the registry as it now is, from what was sent (the password is never kept).
        if answer is not None:
            return await adapter.finish_registry(f"PATCH {REGISTRIES}/{reg.id}")(answer)
        return adapter.to_registry(reg.model_copy(update={"url": data.url, "username": data.username}))

    return adapter.plan(
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


async def _plan_delete_registry(tk: Any, data: SesterceRegistryRef) -> Plan:
    adapter = SesterceProvider.of(tk)
    reg = await adapter.check_registry(data.registry_id)

    async def finish(answer: Any) -> Any:
        return {"deleted": reg.id, "name": reg.name}

    return adapter.plan(
        operation="sesterce_delete_registry",
        action=f"Delete Sesterce registry {reg.name or reg.id} ({reg.url}).",
        target=reg.id,
        request=WireRequest(method="DELETE", path=f"{REGISTRIES}/{reg.id}"),
        finish=finish,
        reversible=False,
        reversibility="its credentials are gone; instances that pull from it can no longer redeploy.",
    )


OPERATIONS: list[Operation] = [
    Operation(
        name="sesterce_create_endpoint",
        title="Create a Sesterce inference instance",
        description="A model (model_id from list_templates) or your own image (registry_id) on a hardware "
        "(hardware_id = a list_offers offer_id), in regions each with its autoscaling. The plan shows the price "
        "at maximum scale. Costs money per hour while pods run; deploys in minutes (wait_for_resource).",
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
