"""Nebius Token Factory: the provider-only operation declarations and their handlers and planners."""

from __future__ import annotations

from typing import Any

from gpu_tools.models import Plan, WireRequest
from gpu_tools.operations import Operation
from gpu_tools.providers.nebius.adapter import NebiusProvider
from gpu_tools.providers.nebius.inputs import NebiusCreateEndpoint
from gpu_tools.providers.nebius.wire import PATH, CreateBody, Scaling


async def _plan_create(tk: Any, data: NebiusCreateEndpoint) -> Plan:
    adapter = NebiusProvider.of(tk)
    await adapter.check_template(data)
    body = CreateBody(
        name=data.name,
        description=data.description,
        model_name=data.model_name,
        flavor_name=data.flavor_name,
        gpu_type=data.gpu_type,
        gpu_count=data.gpu_count,
        region=data.region,
        scaling=Scaling(min_replicas=data.min_replicas, max_replicas=data.max_replicas),
    ).model_dump(exclude_none=True)
    return adapter.plan(
        operation="nebius_create_endpoint",
        action=(
            f"Create Nebius dedicated endpoint {data.name!r}: {data.model_name} ({data.flavor_name}) on "
            f"{data.gpu_count}x {data.gpu_type} per replica, {data.min_replicas}-{data.max_replicas} "
            f"replicas, in {data.region}."
        ),
        target=data.name,
        request=WireRequest(method="POST", path=PATH, json_body=body),
        finish=adapter.finish_endpoint(f"POST {PATH}"),
        reversible=True,
        reversibility="delete it with delete_resource; GPU time is billed while replicas run.",
        **adapter.cost(data.gpu_type, data.gpu_count, data.min_replicas, data.max_replicas),
    )


OPERATIONS: list[Operation] = [
    Operation(
        name="nebius_create_endpoint",
        title="Create a Nebius dedicated endpoint",
        description="An autoscaling deployment of a model template (list_templates gives model_name, flavor_name, "
        "gpu_type, gpu_count, regions); its routing_key is the chat model. Starts within 15 minutes "
        "(wait_for_resource). Costs GPU time while replicas run.",
        input=NebiusCreateEndpoint,
        effect="create",
        planner=_plan_create,
        provider="nebius",
        aliases=("nebius-create",),
    )
]
