"""Nebius Token Factory: dedicated model endpoints.

API: `GET /v0/dedicated_endpoints/templates`, `POST|GET /v0/dedicated_endpoints`,
`PATCH|DELETE /v0/dedicated_endpoints/{endpoint_id}`, bearer auth; inference through the
region's OpenAI-compatible `/v1/chat/completions` with the endpoint's `routing_key` as model.
Stop/start are `PATCH {"enabled": false|true}`. There is no documented single-endpoint GET, so
`get_resource` filters the list. Nebius publishes no prices through this API: plans say so.

API pages: Nebius Token Factory's "Dedicated endpoints" guide (templates, create, list, update,
delete, inference through the OpenAI-compatible API), https://docs.tokenfactory.nebius.com.
Control plane `https://api.tokenfactory.nebius.com`, header `Authorization: Bearer <key>`.

Inferred where the guide is silent:
- The endpoint object's fields beyond the create answer (`enabled`, `deployment{status, readiness,
  ready_replicas}`, `created_at`) and the deployment statuses come from third-party summaries of
  the API reference.
- Stop and start are `PATCH {"enabled": false|true}`.
- The templates answer is parsed in both shapes seen (`templates[].flavors[]` and a map of
  flavors).
- Validation errors are FastAPI-shaped 422 `{"detail": [...]}`.

Modules: `wire` (documented JSON), `inputs` (tool arguments), `adapter` (the `NebiusProvider`),
`operations` (the create tool and its planner).
"""

from gpu_tools.providers.declare import ProviderSpec, Setting
from gpu_tools.providers.nebius.adapter import NebiusProvider
from gpu_tools.providers.nebius.operations import OPERATIONS

PROVIDER = ProviderSpec(
    name="nebius",
    title="Nebius Token Factory",
    adapter=NebiusProvider,
    base_url="https://api.tokenfactory.nebius.com",
    settings=(
        Setting("nebius_api_key", credential=True, secret=True),
        Setting(
            "nebius_inference_base_url",
            description="Overrides the per-region inference base URL (used by the sandbox).",
            sandbox="{url}",
        ),
        Setting(
            "nebius_gpu_usd_per_hour",
            annotation=dict[str, float],
            default_factory=dict,
            description="Your USD price per GPU-hour by Nebius gpu_type (Nebius's API publishes none), e.g. "
            "{'gpu-h100-sxm': 2.95}; offers and plans then show estimated costs.",
        ),
    ),
    toolsets={"nebius": "create Nebius dedicated endpoints"},
    operations=tuple(OPERATIONS),
    sandbox="gpu_tools.sandbox.nebius",
)

__all__ = ["PROVIDER", "NebiusProvider"]
