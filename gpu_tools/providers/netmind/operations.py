"""NetMind: the provider-only operation declarations and their handlers and planners."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gpu_tools.errors import InvalidInput, NotFound
from gpu_tools.gpus import price_order
from gpu_tools.models import (
    Listing,
    Offer,
    Plan,
    Resource,
    WireRequest,
)
from gpu_tools.operations import Operation, Progress
from gpu_tools.providers.netmind.adapter import NetmindProvider
from gpu_tools.providers.netmind.inputs import (
    NetmindAuth,
    NetmindAuthPage,
    NetmindContainerPage,
    NetmindCreateAuth,
    NetmindCreateContainer,
    NetmindCreateEndpoint,
    NetmindCreateImage,
    NetmindGetAuth,
    NetmindGetImage,
    NetmindImage,
    NetmindImagePage,
    NetmindListAuths,
    NetmindListContainers,
    NetmindListImages,
    NetmindListMachines,
)
from gpu_tools.providers.netmind.wire import (
    AUTHS,
    CONTAINERS,
    IMAGES,
    NOT_BILLED,
    SERVICE,
    Auth,
    Container,
    Endpoint,
    EndpointCreateBody,
    EndpointDeployBody,
    EndpointResourceBody,
    Image,
)

if TYPE_CHECKING:
    from gpu_tools.context import Context


# ---- operation handlers and planners ----------------------------------------------------------
async def _list_machines(tk: Context, data: NetmindListMachines, progress: Progress | None) -> Listing[Offer]:
    offers = await NetmindProvider.of(tk).machine_offers(data)
    offers.sort(key=price_order)
    return Listing[Offer](items=offers, total=len(offers))


async def _list_auths(tk: Context, data: NetmindListAuths, progress: Progress | None) -> NetmindAuthPage:
    adapter = NetmindProvider.of(tk)
    page = await adapter.auths(limit=data.limit, marker=data.marker)
    return NetmindAuthPage(
        items=[adapter.auth_view(a) for a in page],
        total=len(page),
        next_marker=page[-1].id if page and len(page) >= data.limit else None,
    )


async def _get_auth(tk: Context, data: NetmindGetAuth, progress: Progress | None) -> NetmindAuth:
    adapter = NetmindProvider.of(tk)
    return adapter.auth_view(await adapter.auth(data.auth_id), reveal_secrets=data.reveal_secrets)


async def _list_images(tk: Context, data: NetmindListImages, progress: Progress | None) -> NetmindImagePage:
    adapter = NetmindProvider.of(tk)
    page = await adapter.images(limit=data.limit, marker=data.marker, image_type=data.image_type)
    return NetmindImagePage(
        items=[adapter.image_view(i) for i in page],
        total=len(page),
        next_marker=str(page[-1].id) if page and len(page) >= data.limit else None,
    )


async def _get_image(tk: Context, data: NetmindGetImage, progress: Progress | None) -> NetmindImage:
    adapter = NetmindProvider.of(tk)
    return adapter.image_view(await adapter.image(data.image_id), reveal_secrets=data.reveal_secrets)


async def _list_containers(
    tk: Context, data: NetmindListContainers, progress: Progress | None
) -> NetmindContainerPage:
    adapter = NetmindProvider.of(tk)
    page = await adapter.containers(limit=data.limit, marker=data.marker)
    return NetmindContainerPage(
        items=[adapter.container_resource(c) for c in page],
        total=len(page),
        next_marker=page[-1].id if page and len(page) >= data.limit else None,
    )


async def _plan_create_endpoint(tk: Context, data: NetmindCreateEndpoint) -> Plan:
    adapter = NetmindProvider.of(tk)
    flavors = await adapter.flavors()
    flavor = next((f for f in flavors if f.flavor_id == data.flavor_id), None)
    if flavor is None:
        listed = ", ".join(f"{f.flavor_id} ({f.display_name}, {f.meta_info.region})" for f in flavors)
        raise InvalidInput(
            f"no flavor {data.flavor_id!r}. Available: {listed or 'none'}.",
            provider=adapter.name,
            hint="See list_offers with provider netmind and kind endpoint.",
        )
    if flavor.node_max_gpu is not None and data.gpu_num > flavor.node_max_gpu:
        raise InvalidInput(
            f"gpu_num {data.gpu_num} is over flavor {flavor.flavor_id}'s node_max_gpu {flavor.node_max_gpu}.",
            provider=adapter.name,
        )
    warnings = []
    if flavor.available_num is not None and flavor.available_num < data.target_instance_number:
        warnings.append(
            f"flavor {flavor.display_name} reports {flavor.available_num} available; "
            f"{data.target_instance_number} instance(s) requested may not all start."
        )
    body = EndpointCreateBody(
        name=data.name,
        description=data.description,
        payment_type=data.payment_type,
        resource_metadata=EndpointResourceBody(
            flavor_id=data.flavor_id,
            scale_type=data.scale_type,
            target_instance_number=data.target_instance_number,
        ),
        deploy_metadata=EndpointDeployBody(
            image_url=data.image_url, command=data.command, port=data.port, gpu_num=data.gpu_num
        ),
    ).model_dump(exclude_none=True)
    usd, source = adapter.endpoint_cost(flavor, data.target_instance_number, data.gpu_num)

    async def finish(answer: Any) -> Resource:
        resource = adapter.endpoint_resource(adapter.parse(Endpoint, answer, f"POST {SERVICE}"))
        resource.region = flavor.meta_info.region
        resource.usd_per_hour = usd
        return resource

    return adapter.plan(
        operation="netmind_create_endpoint",
        action=(
            f"Create NetMind dedicated endpoint {data.name!r}: {data.image_url} on flavor "
            f"{flavor.display_name} ({flavor.meta_info.region}), {data.target_instance_number} instance(s) "
            f"of {data.gpu_num} GPU(s), port {data.port}."
        ),
        target=data.name,
        request=WireRequest(method="POST", path=SERVICE, json_body=body),
        finish=finish,
        reversible=True,
        reversibility="delete it with delete_resource; instances are billed while they run.",
        usd_per_hour=usd,
        usd_per_hour_max=usd,
        price_source=source,
        gpus=max(data.gpu_num, 1) * data.target_instance_number,
        gpu_name=flavor.display_name,
        warnings=warnings,
    )


async def _plan_create_auth(tk: Context, data: NetmindCreateAuth) -> Plan:
    adapter = NetmindProvider.of(tk)

    async def finish(answer: Any) -> dict[str, Any]:
        return adapter.auth_view(adapter.parse(Auth, answer, f"POST {AUTHS}")).model_dump(
            mode="json", exclude={"sandbox"}
        )

    return adapter.plan(
        operation="netmind_create_auth",
        action="Create a NetMind SSH authentication (a password for container SSH logins).",
        target="ssh auth",
        request=WireRequest(method="POST", path=AUTHS, json_body={"value": data.value}),
        finish=finish,
        reversible=False,
        reversibility="NetMind documents no call to delete an auth.",
        usd_per_hour=0.0,
        price_source=NOT_BILLED,
    )


async def _plan_create_image(tk: Context, data: NetmindCreateImage) -> Plan:
    adapter = NetmindProvider.of(tk)
    fields = (
        "name",
        "description",
        "image_name",
        "image_tag",
        "image_label",
        "docker_username",
        "docker_passwd",
        "docker_registry",
        "public_port",
        "onstart",
        "options",
    )
    body = {f: getattr(data, f) for f in fields if getattr(data, f) is not None}

    async def finish(answer: Any) -> dict[str, Any]:
        image = adapter.image_view(adapter.parse(Image, answer, f"POST {IMAGES}"))
        return image.model_dump(mode="json", exclude={"sandbox"})

    return adapter.plan(
        operation="netmind_create_image",
        action=f"Create NetMind custom image {data.name!r} from {data.image_name}:{data.image_tag}.",
        target=data.name,
        request=WireRequest(method="POST", path=IMAGES, json_body=body),
        finish=finish,
        reversible=False,
        reversibility="NetMind documents no call to delete an image.",
        usd_per_hour=0.0,
        price_source=NOT_BILLED,
    )


async def _plan_create_container(tk: Context, data: NetmindCreateContainer) -> Plan:
    adapter = NetmindProvider.of(tk)
    machine, usd, source = await adapter.machine_cost(data.node_name, data.gpu)
    if machine is None:
        raise InvalidInput(
            f"no machine with node_name {data.node_name!r} is listed.",
            provider=adapter.name,
            hint="See list_offers with provider netmind and kind container (offer_id is the node_name).",
        )
    if machine.gpu_count is not None and data.gpu > machine.gpu_count:
        raise InvalidInput(
            f"gpu {data.gpu} is more than the {machine.gpu_count} GPU(s) of {data.node_name}.",
            provider=adapter.name,
        )
    try:
        await adapter.auth(data.auth_id)
    except NotFound:
        raise InvalidInput(
            f"auth_id {data.auth_id} does not exist.",
            provider=adapter.name,
            hint="Create one with netmind_create_auth, or see netmind_list_auths.",
        ) from None
    try:
        await adapter.image(data.image_template_id)
    except NotFound:
        raise InvalidInput(
            f"image_template_id {data.image_template_id} does not exist.",
            provider=adapter.name,
            hint="See netmind_list_images.",
        ) from None
    body = {
        "name": data.name,
        "auth_id": data.auth_id,
        "gpu": data.gpu,
        "node_name": data.node_name,
        "image_template_id": data.image_template_id,
        "payment_type": data.payment_type,
    }

    async def finish(answer: Any) -> Resource:
        resource = adapter.container_resource(adapter.parse(Container, answer, f"POST {CONTAINERS}"))
        resource.region = machine.region
        resource.usd_per_hour = usd
        resource.gpu_name = resource.gpu_name or machine.gpu_name
        return resource

    return adapter.plan(
        operation="netmind_create_container",
        action=(
            f"Create NetMind container {data.name!r}: {data.gpu}x {machine.gpu_name} on {data.node_name} "
            f"({machine.region}), image template {data.image_template_id}, SSH auth {data.auth_id}."
        ),
        target=data.name,
        request=WireRequest(method="POST", path=CONTAINERS, json_body=body),
        finish=finish,
        reversible=True,
        reversibility="stop it with stop_resource or delete it with delete_resource; billed while it runs.",
        usd_per_hour=usd,
        usd_per_hour_max=usd,
        price_source=source,
        gpus=data.gpu,
        gpu_name=machine.gpu_name,
        warnings=[
            f"payment_type {data.payment_type}: NetMind does not publish which currency this integer selects."
        ],
    )


OPERATIONS: list[Operation] = [
    Operation(
        name="netmind_create_endpoint",
        title="Create a NetMind dedicated endpoint",
        description="Your container image (image_url, command, port) on target_instance_number instances of a GPU "
        "flavor (flavor_id = a list_offers offer_id, kind endpoint). Reachable once available "
        "(wait_for_resource). Costs money per instance-hour while it exists; NetMind cannot stop an endpoint: "
        "scale it or delete it.",
        input=NetmindCreateEndpoint,
        effect="create",
        planner=_plan_create_endpoint,
        provider="netmind",
    ),
    Operation(
        name="netmind_list_machines",
        toolset="netmind_rent",
        title="List NetMind Rent GPU machines",
        description="List the NetMind Rent GPU machines available to rent, with every filter NetMind offers "
        "(currency, region, gpu count, gpu_names, min/max memory, disk and price), cheapest USD per GPU-hour "
        "first. Each offer_id is the node_name to pass to netmind_create_container. Use list_offers instead to "
        "compare across providers.",
        input=NetmindListMachines,
        output=Listing[Offer],
        effect="read",
        handler=_list_machines,
        provider="netmind",
    ),
    Operation(
        name="netmind_create_auth",
        toolset="netmind_rent",
        title="Create a NetMind SSH auth",
        description="Create a NetMind SSH authentication: the password (value, 8-32 characters) you will use "
        "to SSH into Rent GPU containers. Returns its auth_id for netmind_create_container; the password is "
        "masked in every output. Costs nothing by itself. ",
        input=NetmindCreateAuth,
        effect="create",
        planner=_plan_create_auth,
        provider="netmind",
    ),
    Operation(
        name="netmind_list_auths",
        toolset="netmind_rent",
        title="List NetMind SSH auths",
        description="List your NetMind SSH authentications (auth_id and creation time; passwords masked), one "
        "page at a time: pass next_marker as marker to get the next page.",
        input=NetmindListAuths,
        output=NetmindAuthPage,
        effect="read",
        handler=_list_auths,
        provider="netmind",
    ),
    Operation(
        name="netmind_get_auth",
        toolset="netmind_rent",
        title="Get a NetMind SSH auth",
        description="Read one NetMind SSH authentication by auth_id. The password is masked unless "
        "reveal_secrets is true; only reveal it when the user asks to see it.",
        input=NetmindGetAuth,
        output=NetmindAuth,
        effect="read",
        handler=_get_auth,
        provider="netmind",
    ),
    Operation(
        name="netmind_create_image",
        toolset="netmind_rent",
        title="Create a NetMind custom image",
        description="Register a custom image (environment template) for NetMind Rent GPU containers: a docker "
        "image (image_name, image_tag), a label, and for a private registry docker_username/docker_passwd "
        "(masked in every output). Optional public_port, onstart command and docker options (--add-host, -e, "
        "-h, -w only). Returns the image; its image_id is the image_template_id for netmind_create_container. "
        "Costs nothing by itself. ",
        input=NetmindCreateImage,
        effect="create",
        planner=_plan_create_image,
        provider="netmind",
    ),
    Operation(
        name="netmind_list_images",
        toolset="netmind_rent",
        title="List NetMind images",
        description="List NetMind Rent GPU images (environment templates) a container can start from, one page "
        "at a time (pass next_marker as marker). image_type filters by NetMind's integer type; the default (0) "
        "is the official images. Registry passwords are masked.",
        input=NetmindListImages,
        output=NetmindImagePage,
        effect="read",
        handler=_list_images,
        provider="netmind",
    ),
    Operation(
        name="netmind_get_image",
        toolset="netmind_rent",
        title="Get a NetMind image",
        description="Read one NetMind Rent GPU image by image_id. docker_passwd is masked unless "
        "reveal_secrets is true; only reveal it when the user asks to see it.",
        input=NetmindGetImage,
        output=NetmindImage,
        effect="read",
        handler=_get_image,
        provider="netmind",
    ),
    Operation(
        name="netmind_create_container",
        toolset="netmind_rent",
        title="Create a NetMind Rent GPU container",
        description="Rent GPUs on a NetMind machine as a container: node_name is the offer_id from list_offers "
        "(provider netmind, kind container) or netmind_list_machines, gpu how many of its GPUs (1-12), "
        "image_template_id an image from netmind_list_images, auth_id an SSH auth from netmind_create_auth. "
        "Returns the container with its resource_id (container:<id>) and SSH details. Costs money per "
        "GPU-hour while it runs: the plan shows the estimate from the machine price. Stop, restart "
        "(start_resource) or delete it with the lifecycle tools. NetMind does not publish what its container "
        "status integers mean, so status stays 'unknown' with the integer in raw_status and wait_for_resource "
        "cannot tell when it runs: read get_resource (raw_status, ssh) instead. ",
        input=NetmindCreateContainer,
        effect="create",
        planner=_plan_create_container,
        provider="netmind",
    ),
    Operation(
        name="netmind_list_containers",
        toolset="netmind_rent",
        title="List NetMind containers (one page)",
        description="List your NetMind Rent GPU containers one page at a time (limit, and marker = next_marker "
        "of the previous page). list_resources lists them all, together with your endpoints. Container "
        "statuses are NetMind's raw integers (raw_status); their meaning is not published.",
        input=NetmindListContainers,
        output=NetmindContainerPage,
        effect="read",
        handler=_list_containers,
        provider="netmind",
    ),
]
