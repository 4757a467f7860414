"""Nebius Token Factory: tool arguments, and the results of the provider-only operations."""

from typing import Self

from pydantic import Field, model_validator

from gpu_tools.operations import MAX_REPLICAS, NAME_MAX, TEXT_MAX, CreateInput


# ---- operation inputs ------------------------------------------------------------------------
class NebiusCreateEndpoint(CreateInput):
    """Create a Nebius dedicated endpoint (argument names are the documented fields, scaling flattened)."""

    name: str = Field(description="Endpoint name.", min_length=1, max_length=200)
    description: str | None = Field(None, description="Optional description.", max_length=TEXT_MAX)
    model_name: str = Field(
        description="Model template, e.g. openai/gpt-oss-20b (list_templates).",
        min_length=1,
        max_length=NAME_MAX,
    )
    flavor_name: str = Field(
        description="Template flavor, e.g. base or fast.", min_length=1, max_length=NAME_MAX
    )
    gpu_type: str = Field(description="GPU type, e.g. gpu-h100-sxm.", min_length=1, max_length=NAME_MAX)
    gpu_count: int = Field(1, ge=1, le=16, description="GPUs per replica.")
    region: str = Field("eu-north1", description="eu-north1, eu-west1 or us-central1.", max_length=NAME_MAX)
    min_replicas: int = Field(1, ge=0, description="Minimum replicas.", le=MAX_REPLICAS)
    max_replicas: int = Field(1, ge=1, description="Maximum replicas.", le=MAX_REPLICAS)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must not exceed max_replicas")
        return self
