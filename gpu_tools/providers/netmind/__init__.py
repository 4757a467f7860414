"""NetMind: dedicated inference endpoints and Rent GPU containers, one adapter for both products.

Dedicated endpoints (`/v1/inference-service...`): the flavors are the offers (kind `endpoint`); an
endpoint runs a container image on a flavor, is scaled by PUT `target_instance_number` and deleted.
NetMind documents no call that lists endpoints, and none that stops or starts one. So
`list_resources` reads back, one GET each, the endpoints this tool created (found in the journal,
which records every create before it is sent), and stop/start answer `Unsupported` with what to do
instead.

Rent GPU (`/v1/rentgpu/...`): the machines are the offers (kind `container`); SSH auths and image
templates are NetMind-only operations; containers are created on a machine's `node_name`, listed
with marker paging, stopped, restarted and deleted. NetMind does not publish what its integer enums
(container `status`, `payment_type`, `image_type`) mean, so they stay integers: a container's
normalized status is `unknown` and its `raw_status` is the integer, never an invented name.

Resource ids carry the product, `endpoint:<service_id>` and `container:<container_id>`, so the
unified lifecycle tools know which API to call and the two id spaces never collide.

Secrets: an auth's `value` is an SSH password and an image's `docker_passwd` a registry password;
both are masked in every result, plan and journal row unless a get is asked to reveal them.

API pages (NetMind Power documentation, https://docs.netmind.ai): "Inference > Dedicated Endpoints"
(flavors, create, get, update, delete an endpoint) and "Rent GPUs > Container" (machines, auths,
images, containers). Base URL `https://api.netmind.ai`, header `Authorization: Bearer <key>`.

Inferred where the pages are silent:
- Prices are read per GPU-hour (the pages give a number and no unit); CNY and NMT prices are
  converted at the configurable rates and marked as estimates.
- Memory figures are whole GB (`memory_total` 1600 is a 1.6 TB machine).
- Rent GPU's 422 answers are FastAPI-shaped `{"detail": [{"loc", "msg", "type"}]}` (the pages
  document a 422 with that schema, no example).
- An update sends `target_instance_number` as a string, as the update example does; answers carry a
  number and both are read.

Modules: `wire` (documented JSON), `inputs` (tool arguments and results), `adapter` (the
`NetmindProvider`), `operations` (the NetMind-only tools and their planners).
"""

from gpu_tools.providers.declare import ProviderSpec, Setting
from gpu_tools.providers.netmind.adapter import NetmindProvider
from gpu_tools.providers.netmind.operations import OPERATIONS

PROVIDER = ProviderSpec(
    name="netmind",
    title="NetMind",
    adapter=NetmindProvider,
    base_url="https://api.netmind.ai",
    settings=(Setting("netmind_api_key", credential=True, secret=True),),
    toolsets={
        "netmind": "create NetMind dedicated endpoints",
        "netmind_rent": "NetMind Rent GPU: machines, SSH auths, images, create and page through containers",
    },
    operations=tuple(OPERATIONS),
    sandbox="gpu_tools.sandbox.netmind",
)

__all__ = ["PROVIDER", "NetmindProvider"]
