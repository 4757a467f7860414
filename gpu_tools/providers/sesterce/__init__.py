"""Sesterce Cloud: AI inference instances with per-region autoscaling, registries, price preview.

API (base `https://api.cloud.sesterce.com`, header `x-api-key`), all under `/ai-inference`:
`GET models|hardwares|regions`, `GET|POST registries`, `PATCH|DELETE registries/{id}`,
`GET|POST instances`, `GET|PATCH|DELETE instances/{id}`, `POST instances/{id}/start|stop` and
`POST instances/pricing`, which is a price *preview* (a read, sent without confirmation).
Lists are bare JSON arrays; start, stop and the registry writes answer 204 with no body; errors
are NestJS-shaped `{statusCode, timestamp, path, message}` (the http layer extracts `message`).

Mapping choices worth knowing:
- One instance can run in several regions, each with its own autoscaling; `Resource.replicas`,
  `min_replicas` and `max_replicas` are totals over the regions, and `update_resource` applies its
  min/max to every region (its plan says so).
- The documented PATCH body repeats the whole configuration and marks `modelId` and `registryId`
  required, but the documented instance detail does not report them: an update takes them from the
  detail when it has them, else from this tool's journaled create of the instance, else from the
  caller (`sesterce_update_endpoint model_id/registry_id`; the one not given is sent as null), and
  otherwise refuses before sending, saying what to pass.
- Environment variable values may be secrets: they are masked in every output (`mask`).
- The registry password is write-only: no output model has a field for it and plans mask it.

API pages: Sesterce Cloud's API reference, "AI Inference > Inference Instances" (models,
hardwares, regions, registries, instances, pricing) at https://docs.sesterce.com; the official
`sesterce-cli` (which hard-codes the base URL and lists the instance statuses).

Inferred where the pages are silent:
- `DELETE /ai-inference/instances/{id}` is not on the page; the official CLI uses it.
- The statuses and their meaning come from the CLI's source (PARTIALLYDEPLOYED counts as running).
- A price is read as USD only when the pricing answer's `currencyCode` is USD or absent; any other
  currency leaves the plan without a USD figure rather than guessing a rate.
- A normal `User-Agent` is sent; a bare client may be refused by the CDN (third-party reports).

Modules: `wire` (documented JSON), `inputs` (tool arguments and results), `adapter` (the
`SesterceProvider`), `operations` (the Sesterce-only tools and their planners).
"""

from gpu_tools.providers.declare import ProviderSpec, Setting
from gpu_tools.providers.sesterce.adapter import SesterceProvider
from gpu_tools.providers.sesterce.operations import OPERATIONS

PROVIDER = ProviderSpec(
    name="sesterce",
    title="Sesterce Cloud",
    adapter=SesterceProvider,
    base_url="https://api.cloud.sesterce.com",
    settings=(Setting("sesterce_api_key", credential=True, secret=True),),
    toolsets={
        "sesterce": "create Sesterce inference instances",
        "sesterce_admin": "Sesterce price previews, every setting of an instance, container registries",
    },
    operations=tuple(OPERATIONS),
    sandbox="gpu_tools.sandbox.sesterce",
)

__all__ = ["PROVIDER", "SesterceProvider"]
