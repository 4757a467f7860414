"""Nebius Token Factory: tool arguments, and the results of the provider-only operations."""

from __future__ import annotations

from pydantic import Field, model_validator

from gpu_tools.operations import CreateInput


# ---- operation inputs ------------------------------------------------------------------------
class NebiusCreateEndpoint(CreateInput):
    """Create a Nebius dedicated endpoint (argument names are the documented fields, scaling flattened)."""

    name: str = Field(description="Display name for the endpoint.", min_length=1, max_length=200)
    description: str | None = Field(None, description="Optional description.")
    model_name: str = Field(description="Model template name, e.g. openai/gpt-oss-20b (see list_templates).")
    flavor_name: str = Field(description="Template flavor, e.g. base or fast.")
    gpu_type: str = Field(description="GPU type the template supports, e.g. gpu-h100-sxm.")
    gpu_count: int = Field(1, ge=1, le=16, description="GPUs per replica.")
    region: str = Field("eu-north1", description="eu-north1, eu-west1 or us-central1.")
    min_replicas: int = Field(1, ge=0, description="Minimum replicas (scaling.min_replicas).")
    max_replicas: int = Field(1, ge=1, description="Maximum replicas (scaling.max_replicas).")

    @model_validator(mode="after")
    def _check(self) -> NebiusCreateEndpoint:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must not exceed max_replicas")
        return self
