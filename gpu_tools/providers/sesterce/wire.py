"""Sesterce Cloud: the documented JSON as pydantic models, and the documented paths and values."""

import re
from typing import Any

from pydantic import AliasChoices, ConfigDict, Field
from pydantic.alias_generators import to_camel

from gpu_tools.models import (
    Status,
)
from gpu_tools.providers.wire import Wire as SharedWire

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
class Wire(SharedWire):
    """Sesterce's JSON is camelCase throughout."""

    model_config = ConfigDict(alias_generator=to_camel)


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
