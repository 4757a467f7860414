"""Nebius Token Factory: the documented JSON as pydantic models, and the documented paths and values."""

from pydantic import AliasChoices, BaseModel, Field

from gpu_tools.models import Status
from gpu_tools.providers.wire import Wire

PATH = "/v0/dedicated_endpoints"
INFERENCE_BASE = {
    "eu-north1": "https://api.tokenfactory.nebius.com",
    "eu-west1": "https://api.tokenfactory.eu-west1.nebius.com",
    "us-central1": "https://api.tokenfactory.us-central1.nebius.com",
}
REGION_NAMES = {"eu-north1": "Finland", "eu-west1": "Paris", "us-central1": "Kansas City"}
STATUS: dict[str, Status] = {
    "starting": "pending",
    "creating": "pending",
    "provisioning": "pending",
    "updating": "pending",
    "stopping": "pending",
    "running": "running",
    "ready": "running",
    "stopped": "stopped",
    "error": "failed",
    "failed": "failed",
    "deleting": "deleting",
}
NO_PRICE = "Nebius publishes no prices through its API"


# ---- wire models (mirror the documented JSON) -------------------------------------------------
class Scaling(Wire):
    min_replicas: int
    max_replicas: int


class Deployment(Wire):
    status: str | None = None
    readiness: str | None = None
    ready_replicas: int | None = None


class Endpoint(Wire):
    id: str = Field(validation_alias=AliasChoices("id", "endpoint_id"))
    name: str | None = None
    description: str | None = None
    enabled: bool | None = None
    routing_key: str | None = None
    model_name: str | None = None
    flavor_name: str | None = None
    region: str | None = None
    gpu_type: str | None = None
    gpu_count: int | None = None
    scaling: Scaling | None = None
    deployment: Deployment | None = None
    created_at: str | None = None


class CreateBody(BaseModel):
    name: str
    description: str | None = None
    model_name: str
    flavor_name: str
    gpu_type: str
    gpu_count: int
    region: str
    scaling: Scaling
