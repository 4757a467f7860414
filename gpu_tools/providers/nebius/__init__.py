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

from gpu_tools.providers.nebius.adapter import NebiusProvider
from gpu_tools.providers.nebius.operations import OPERATIONS

NebiusProvider.operations = OPERATIONS

__all__ = ["OPERATIONS", "NebiusProvider"]
