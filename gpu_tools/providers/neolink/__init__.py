"""NeoLink AI: GPU compute instances (regions, GPU SKUs, instances with power off/on and snapshots).

API (base `https://neolink-ai.com/mdc/api/v1`, headers `namespace: <user id>` and
`Authorization: bearer <token>`): `GET /regions`, `GET /skus/computings?region_id=...`,
`POST|GET /clusters/{cluster}/instances`, `GET /clusters/{cluster}/instances/{name}`,
`POST /clusters/{cluster}/instances/{name}/power_off` (body `{gracePeriodSeconds, needSnapshot,
imageName, tag}`), `POST .../power_on` (no body), `DELETE /clusters/{cluster}/instances?name=...`.
Stop and delete answer the JSON string "ok".

An instance's id is its `name` (`instance-ccffxxxx`); every instance path also needs the cluster,
which the unified lifecycle tools do not carry. The adapter remembers the cluster of every instance
it has seen and otherwise looks the name up in each region's cluster (usually one).

Prices are CNY (the currency is stated on every offer); USD figures are converted at the
configurable `usd_per_cny` rate and marked as estimates. The docs do not state the price unit: it
is taken as per hour for every billing type, which errs on the safe side of a USD/hour cap.
The SSH password and the Jupyter token (inside the Jupyter URL) are masked unless asked for.

API pages: NeoLink AI's "Computing API" (API credentials, regions, computing SKUs, instances:
create, list, get, power off, power on, delete), in Chinese and English, on the NeoLink AI platform's
documentation site (https://neolink-ai.com).

Inferred where the pages are silent:
- Prices are CNY and per hour for every billing type (the pages name neither).
- `CostTime` units "W" and "M" for weekly and monthly terms (only "D" appears in the pages).
- Start posts to `power_on`: the page's request line says power_off, its own code example posts
  to power_on.
- Instance list paging: the pages show only the unpaged request and its `hasNextPage`/`totalCount`;
  `page`/`pageSize` are assumed, and sent only after an answer says there is more.
- Statuses beyond Creating and Running are the console's words (Starting, Shutting Down, Shutdown,
  Deleting); any other string is `unknown` with the raw value kept.

Modules: `wire` (documented JSON), `inputs` (tool arguments), `adapter` (the `NeolinkProvider`),
`operations` (the NeoLink-only tools and the create planner).
"""

from gpu_tools.providers.declare import ProviderSpec, Setting
from gpu_tools.providers.neolink.adapter import NeolinkProvider
from gpu_tools.providers.neolink.operations import OPERATIONS

PROVIDER = ProviderSpec(
    name="neolink",
    title="NeoLink AI",
    adapter=NeolinkProvider,
    base_url="https://neolink-ai.com/mdc/api/v1",
    settings=(
        Setting("neolink_api_token", credential=True, secret=True),
        Setting("neolink_namespace", credential=True, hint="your user id", sandbox="sandbox-user"),
    ),
    toolsets={"neolink": "create NeoLink GPU instances and list a region's GPU SKUs"},
    operations=tuple(OPERATIONS),
    sandbox="gpu_tools.sandbox.neolink",
    sandbox_path="/mdc/api/v1",
)

__all__ = ["PROVIDER", "NeolinkProvider"]
