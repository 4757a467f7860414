"""NetMind: the documented JSON as pydantic models, and the documented paths and values."""

import re
from typing import Any

from pydantic import BaseModel, Field

from gpu_tools.models import Status
from gpu_tools.providers.wire import Wire

# ---- documented paths and values ---------------------------------------------------------------
SERVICE = "/v1/inference-service"
FLAVORS = "/v1/inference-service/flavor"
MACHINES = "/v1/rentgpu/machines"
AUTHS = "/v1/rentgpu/auths/"
IMAGES = "/v1/rentgpu/images/"
CONTAINERS = "/v1/rentgpu/containers/"
INFERENCE_URL = "https://api.deeptrin.com/inference-api/v1/inference_service/{service_id}"

ENDPOINT_STATUS: dict[str, Status] = {
    "initializing": "pending",
    "available": "running",
    "stopped": "stopped",
    "unavailable": "failed",
}
# The region codes the machine list documents as its enumeration.
MACHINE_REGIONS = (
    "HK SE CZ CA RO US ES BR CN JP DE AU IT RU PL VN PH TW NL RS SG AR NZ FI IN BG NO EE MY BH GB LT"
).split()

# Option flags the image `options` field documents as the only ones supported.
IMAGE_OPTIONS = ("--add-host", "-e", "-h", "-w")
# Memory of GPUs whose NetMind names do not state it (by canonical model).

PRICE_UNIT = "per GPU-hour (NetMind's docs do not state the unit; gpu-tools reads it per GPU-hour)"
STATUS_MEANING = "NetMind does not publish what container status integers mean; see raw_status"
NOT_BILLED = "registers a template or credential at NetMind; no GPU is rented by this call"
ID_FORMAT = "NetMind resource ids look like endpoint:<service_id> or container:<container_id>"

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]+$")


# ---- wire models (mirror the documented JSON) ------------------------------------------------
class FlavorMeta(Wire):
    cuda: str | None = None
    region: str | None = None


class FlavorBilling(Wire):
    cny_price_unit: float | None = None
    usd_price_unit: float | None = None
    nmt_price_unit: float | None = None


class Flavor(Wire):
    flavor_id: str
    display_name: str
    cluster_id: str | None = None
    cluster_flavor_id: str | None = None
    meta_info: FlavorMeta = Field(default_factory=FlavorMeta)
    billing: FlavorBilling = Field(default_factory=FlavorBilling)
    created_at: str | None = None
    updated_at: str | None = None
    deleted_at: str | None = None
    is_deleted: bool | None = None
    available_num: int | None = None
    node_max_gpu: int | None = None


class FlavorList(Wire):
    flavor_list: list[Flavor]


class EndpointResourceMeta(Wire):
    resource_display_name: str | None = None
    scale_type: str | None = None
    flavor_id: str | None = None
    # Responses carry a number; the update example sends a string ("2"): both parse.
    target_instance_number: int | None = None
    scale_policy: Any = None
    vram: str | None = Field(None, alias="VRAM")
    image_size: str | None = None


class EndpointDeployMeta(Wire):
    image_url: str | None = None
    command: str | None = None
    port: int | None = None
    gpu_num: int | None = None


class Endpoint(Wire):
    service_id: str
    name: str | None = None
    description: str | None = None
    user_id: str | None = None
    status: str | None = None
    status_info: Any = None
    resource_metadata: EndpointResourceMeta = Field(default_factory=EndpointResourceMeta)
    billing_metadata: dict[str, Any] | None = None
    endpoint_metadata: dict[str, Any] | None = None
    deploy_metadata: EndpointDeployMeta = Field(default_factory=EndpointDeployMeta)
    service_type: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    deleted_at: str | None = None
    is_deleted: bool | None = None
    payment_type: str | None = None


class EndpointResourceBody(BaseModel):
    flavor_id: str
    scale_type: str
    target_instance_number: int


class EndpointDeployBody(BaseModel):
    image_url: str
    command: str | None = None
    port: int
    gpu_num: int


class EndpointCreateBody(BaseModel):
    name: str
    description: str | None = None
    payment_type: str
    resource_metadata: EndpointResourceBody
    deploy_metadata: EndpointDeployBody


class Machine(Wire):
    on_demand: Any = None
    labels: list[Any] = Field(default_factory=list)
    node_name: str
    cluster: str | None = None
    gpu_name: str | None = None
    gpu_count: int | None = None
    gpu_memory: float | None = None
    cpu_name: str | None = None
    cpu_count: int | None = None
    cpu_per_gpu: float | None = None
    memory_per_gpu: float | None = None
    memory_total: float | None = None
    disk_per_gpu: float | None = None
    disk_total: float | None = None
    region: str | None = None
    network_upload_speed: float | None = None
    network_download_speed: float | None = None
    up_time: float | None = None
    online_rate: float | None = None
    price: str | float | None = None
    original_price: str | float | None = None
    gpu_id: int | None = None
    organization: str | None = None
    driver_version: str | None = None
    cuda_version: str | None = None
    nvlink_status: bool | None = None


class Auth(Wire):
    id: int
    value: str | None = None
    created_at: str | None = None


class Image(Wire):
    name: str | None = None
    description: str | None = None
    image_name: str | None = None
    image_tag: str | None = None
    image_label: str | None = None
    docker_username: str | None = None
    docker_passwd: str | None = None
    docker_registry: str | None = None
    public_port: str | int | None = None
    onstart: str | None = None
    options: str | None = None
    image_type: int | None = None
    id: int
    created_at: str | None = None


class Container(Wire):
    name: str | None = None
    auth_id: int | None = None
    gpu: int | None = None
    node_name: str | None = None
    image_template_id: int | None = None
    enable_vscode: bool | None = None
    enable_jupyter: bool | None = None
    cpu: float | None = None
    disk_size: float | None = None
    memory: float | None = None
    gpu_name: int | str | None = None
    id: int
    ssh: str | None = None
    status: int | None = None
    exposed_service: str | None = None
    vscode_service: str | None = None
    jupyter_service: str | None = None
    created_at: str | None = None
