"""Contract tests of the Sesterce adapter against the documented API (respx, no network).

Each documented operation (plus the CLI's DELETE) is called through the registry, and the test
checks the exact method, path, `x-api-key` header and JSON body sent, and that the documented
example answer (saved verbatim under tests/fixtures/sesterce/) parses into the right model.
Some catalogue mocks are the documented examples extended with the ids the documented create
and update bodies refer to, since the adapter checks ids before sending anything.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from gpu_tools.errors import (
    AuthError,
    ConfirmationRefused,
    InvalidInput,
    NotFound,
    PolicyRefused,
    ProviderRejected,
)
from gpu_tools.gate import Approve, Refuse
from gpu_tools.models import Listing, MutationResult, Offer, Region, Resource, Template
from gpu_tools.providers.sesterce.inputs import SesterceQuote, SesterceRegistry
from gpu_tools.settings import Settings
from gpu_tools.toolkit import Toolkit
from tests.conftest import FIXTURES

BASE = "https://api.cloud.sesterce.com"
KEY = "ses-test-key"
L40S = "59651ba4-657a-41d4-8c42-00f34f732375"
MODEL = "201a99c3-7cd4-4831-865e-b261082fda4b"
REGISTRY = "6721058be81810b9dd045f40"
INSTANCE = "6721058be81810b9dd045f40"

pytestmark = pytest.mark.anyio


def load(name: str) -> Any:
    return json.loads((FIXTURES / "sesterce" / f"{name}.json").read_text())


@pytest.fixture
def ses() -> Iterator[Toolkit]:
    toolkit = Toolkit(Settings(sesterce_api_key=KEY))
    yield toolkit
    toolkit.close()


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


def sent(route: respx.Route) -> httpx.Request:
    assert route.call_count == 1, f"{route} was called {route.call_count} times"
    return route.calls.last.request


def assert_call(route: respx.Route, method: str, path: str, body: Any = None) -> None:
    """The one call `route` saw: method, path, the API key header, and the JSON body (if any)."""
    request = sent(route)
    assert request.method == method
    assert request.url.path == path
    assert request.headers["x-api-key"] == KEY
    assert "authorization" not in request.headers
    if body is None:
        assert request.content == b""
    else:
        assert json.loads(request.content) == body


def catalogue(api: respx.MockRouter) -> dict[str, respx.Route]:
    """The documented catalogue answers, extended with what the documented create body names:
    model 201a99c3-..., and region 18 offering hardware 59651ba4-... ."""
    models = load("models") + [
        {"id": MODEL, "name": "llama-3.1-8b-instruct", "port": 80, "features": ["chat"]}
    ]
    regions = load("regions")
    regions[0]["capacities"].append({"hardwareId": L40S, "capacity": 12})
    return {
        "models": api.get("/ai-inference/models").respond(200, json=models),
        "hardwares": api.get("/ai-inference/hardwares").respond(200, json=load("hardwares")),
        "regions": api.get("/ai-inference/regions").respond(200, json=regions),
        "registries": api.get("/ai-inference/registries").respond(200, json=load("registries")),
        "pricing": api.post("/ai-inference/instances/pricing").respond(201, json=load("pricing")),
    }


def documented_region(**overrides: Any) -> dict[str, Any]:
    """The autoscaling of the documented create body, as the tool's flat region object."""
    return {
        "region_id": 18,
        "min": 1,
        "max": 4,
        "cooldown_period": 300,
        "cpu_threshold": 92,
        "gpu_memory_threshold": 92,
        "gpu_utilization_threshold": 92,
        "memory_threshold": 92,
        "http_rate": 12,
        "http_window": 20,
        **overrides,
    }


DOCUMENTED_CREATE = {
    "name": "example-inference-instance",
    "description": "example description.",
    "model_id": MODEL,
    "container_port": 80,
    "hardware_id": L40S,
    "regions": [documented_region()],
    "pod_lifetime": 120,
    "envs": {"PORT": "3333"},
    "startup_command": "npx create-llama",
    "registry_id": REGISTRY,
    "api_key_ids": [REGISTRY],
}


# ---- catalogue reads --------------------------------------------------------------------------
async def test_list_templates_parses_the_documented_models(ses: Toolkit, api: respx.MockRouter) -> None:
    models = api.get("/ai-inference/models").respond(200, json=load("models"))
    api.get("/ai-inference/hardwares").respond(200, json=load("hardwares"))

    result = await ses.call("list_templates", {"provider": "sesterce"})

    assert_call(models, "GET", "/ai-inference/models")
    assert isinstance(result, Listing)
    [template] = result.items
    assert isinstance(template, Template)
    assert template.name == "stable-diffusion"
    assert template.details["model_id"] == "12ed7523-432c-48f5-b3cd-32e6726d07c8"
    assert template.details["features"] == ["image"]
    assert template.gpu_types == ["NVIDIA-L40S"]  # the model's default hardware
    assert template.gpu_counts == [1]
    assert "port 8000" in (template.description or "")


async def test_list_regions_parses_the_documented_regions(ses: Toolkit, api: respx.MockRouter) -> None:
    regions = api.get("/ai-inference/regions").respond(200, json=load("regions"))

    result = await ses.call("list_regions", {"provider": "sesterce"})

    assert_call(regions, "GET", "/ai-inference/regions")
    [region] = result.items
    assert isinstance(region, Region)
    assert (region.region_id, region.name) == ("18", "Singapore")
    assert region.details["countryCode"] == "SG"
    assert region.details["capacities"][1] == {
        "hardwareId": "dc172cc8-0035-4527-958b-775f951e8836",
        "capacity": 19,
    }


async def test_list_offers_parses_the_documented_hardware(ses: Toolkit, api: respx.MockRouter) -> None:
    """The documented hardware is in no documented region's capacities: listed, not available."""
    hardwares = api.get("/ai-inference/hardwares").respond(200, json=load("hardwares"))
    api.get("/ai-inference/regions").respond(200, json=load("regions"))
    pricing = api.post("/ai-inference/instances/pricing").respond(201, json=load("pricing"))

    result = await ses.call("list_offers", {"provider": "sesterce"})

    assert_call(hardwares, "GET", "/ai-inference/hardwares")
    assert not pricing.called
    [offer] = result.items
    assert isinstance(offer, Offer)
    assert offer.offer_id == L40S
    assert (offer.gpu_name, offer.gpu_model, offer.gpu_count, offer.gpu_memory_gb) == (
        "NVIDIA-L40S",
        "L40S",
        1,
        48,
    )
    assert (offer.vcpu, offer.ram_gb) == (16, 232.0)  # 16000 millicores, 237568 MiB
    assert offer.region is None and offer.available is False


async def test_list_offers_joins_region_capacity_and_the_price_preview(
    ses: Toolkit, api: respx.MockRouter
) -> None:
    routes = catalogue(api)

    result = await ses.call("list_offers", {"provider": "sesterce"})

    assert_call(
        routes["pricing"],
        "POST",
        "/ai-inference/instances/pricing",
        {"hardwareId": L40S, "autoScalingConfigurations": [{"regionId": 18, "scale": {"max": 1}}]},
    )
    [offer] = result.items
    assert offer.region == "Singapore" and offer.region_id == "18"  # the name shown, the id kept
    assert offer.available is True
    assert offer.details["capacity"] == 12 and offer.details["region_name"] == "Singapore"
    assert (offer.price, offer.currency, offer.usd_per_hour) == (1.44, "USD", 1.44)
    assert offer.details["price_per_month"] == 43.2


async def test_price_preview_sends_the_documented_body(ses: Toolkit, api: respx.MockRouter) -> None:
    routes = catalogue(api)

    quote = await ses.call(
        "sesterce_price_preview", {"hardware_id": L40S, "regions": [{"region_id": 18, "max": 4}]}
    )

    assert_call(routes["pricing"], "POST", "/ai-inference/instances/pricing", load("pricing_request"))
    assert isinstance(quote, SesterceQuote)
    assert (quote.currency, quote.price_per_hour, quote.price_per_month) == ("USD", 1.44, 43.2)
    assert quote.usd_per_hour == 1.44
    assert (quote.max_replicas, quote.gpus) == (4, 4)


# ---- registries -------------------------------------------------------------------------------
async def test_create_registry_sends_the_documented_body_and_never_shows_the_password(
    ses: Toolkit, api: respx.MockRouter
) -> None:
    create = api.post("/ai-inference/registries").respond(201, json=load("registry_created"))

    result = await ses.call("sesterce_create_registry", load("registry_create_request"), confirmer=Approve())

    assert_call(create, "POST", "/ai-inference/registries", load("registry_create_request"))
    assert isinstance(result, MutationResult)
    assert result.plan.body["password"] == "***"
    assert SesterceRegistry.model_validate(result.detail) == SesterceRegistry(
        registry_id=REGISTRY,
        name="example-registry",
        url="docker.io/library/user/image:tag",
        username="someusername",
        created_at="2019-06-26T13:00:00.000Z",
        updated_at="2019-06-26T13:00:00.000Z",
    )
    history = await ses.call("history", {})
    everything = result.model_dump_json() + history.model_dump_json()
    assert "securepassword" not in everything


async def test_list_registries_parses_the_documented_list(ses: Toolkit, api: respx.MockRouter) -> None:
    registries = api.get("/ai-inference/registries").respond(200, json=load("registries"))

    result = await ses.call("sesterce_list_registries", {})

    assert_call(registries, "GET", "/ai-inference/registries")
    [registry] = result.items
    assert isinstance(registry, SesterceRegistry)
    assert (registry.registry_id, registry.name, registry.username) == (REGISTRY, "example-registry", None)


async def test_update_registry_sends_the_documented_body_and_accepts_204(
    ses: Toolkit, api: respx.MockRouter
) -> None:
    api.get("/ai-inference/registries").respond(200, json=load("registries"))
    patch = api.patch(f"/ai-inference/registries/{REGISTRY}").respond(204)

    result = await ses.call(
        "sesterce_update_registry",
        {"registry_id": REGISTRY, **load("registry_update_request")},
        confirmer=Approve(),
    )

    assert_call(patch, "PATCH", f"/ai-inference/registries/{REGISTRY}", load("registry_update_request"))
    assert result.outcome == "done"
    assert result.detail["registry_id"] == REGISTRY and result.detail["username"] == "someusername"
    assert "securepassword" not in result.model_dump_json()


async def test_delete_registry_sends_delete_and_accepts_204(ses: Toolkit, api: respx.MockRouter) -> None:
    api.get("/ai-inference/registries").respond(200, json=load("registries"))
    delete = api.delete(f"/ai-inference/registries/{REGISTRY}").respond(204)

    result = await ses.call("sesterce_delete_registry", {"registry_id": REGISTRY}, confirmer=Approve())

    assert_call(delete, "DELETE", f"/ai-inference/registries/{REGISTRY}")
    assert result.detail == {"deleted": REGISTRY, "name": "example-registry"}
    assert result.plan.reversible is False


async def test_update_of_an_unknown_registry_is_refused_before_sending(
    ses: Toolkit, api: respx.MockRouter
) -> None:
    api.get("/ai-inference/registries").respond(200, json=load("registries"))
    patch = api.patch(url__regex=r"/ai-inference/registries/.*").respond(204)

    with pytest.raises(NotFound, match="no registry 'nope'"):
        await ses.call(
            "sesterce_update_registry",
            {"registry_id": "nope", "url": "u", "username": "n", "password": "p"},
            confirmer=Approve(),
        )
    assert not patch.called


# ---- instances --------------------------------------------------------------------------------
async def test_create_endpoint_sends_the_documented_body(ses: Toolkit, api: respx.MockRouter) -> None:
    routes = catalogue(api)
    create = api.post("/ai-inference/instances").respond(201, json=load("instance"))
    api.get(f"/ai-inference/instances/{INSTANCE}").respond(200, json=load("instance_detail"))

    result = await ses.call("sesterce_create_endpoint", DOCUMENTED_CREATE, confirmer=Approve())

    assert_call(create, "POST", "/ai-inference/instances", load("instance_create_request"))
    # at maximum and at minimum scale, when asked and again just before the send (the price sent)
    assert routes["pricing"].call_count == 4
    bodies = [json.loads(c.request.content) for c in routes["pricing"].calls]
    assert bodies == 2 * [
        load("pricing_request"),
        {"hardwareId": L40S, "autoScalingConfigurations": [{"regionId": 18, "scale": {"max": 1}}]},
    ]
    assert result.plan.body["envs"] == {"PORT": "***"}  # env values may be secrets
    assert result.plan.usd_per_hour_max == 1.44 and result.plan.gpus == 4
    resource = result.resource
    assert isinstance(resource, Resource)
    assert (resource.resource_id, resource.status, resource.raw_status) == (INSTANCE, "running", "ACTIVE")
    assert resource.url == "https://iate-example-6672-d7c85154.ai.sesterce.dev/"


async def test_create_endpoint_dry_run_shows_the_price_preview_and_sends_no_mutation(
    ses: Toolkit, api: respx.MockRouter
) -> None:
    routes = catalogue(api)
    create = api.post("/ai-inference/instances").respond(201, json=load("instance"))

    result = await ses.call("sesterce_create_endpoint", {**DOCUMENTED_CREATE, "dry_run": True})

    assert result.outcome == "dry_run"
    assert not create.called
    assert all(c.request.method == "GET" or c.request.url.path.endswith("/pricing") for c in api.calls)
    plan = result.plan
    assert plan.usd_per_hour_max == 1.44
    assert plan.price_source and "Sesterce price preview" in plan.price_source
    assert any("1.44 USD/hour, 43.20 USD/month" in w for w in plan.warnings)
    assert "$1.44/hour" in plan.message()
    assert routes["pricing"].called


async def test_create_endpoint_refuses_a_region_without_the_hardware(
    ses: Toolkit, api: respx.MockRouter
) -> None:
    api.get("/ai-inference/hardwares").respond(200, json=load("hardwares"))
    api.get("/ai-inference/regions").respond(200, json=load("regions"))  # region 18 lacks 59651ba4
    create = api.post("/ai-inference/instances")

    with pytest.raises(InvalidInput, match="does not offer 1xL40S"):
        await ses.call("sesterce_create_endpoint", DOCUMENTED_CREATE, confirmer=Approve())
    assert not create.called


async def test_create_endpoint_rejects_bad_scaling_before_any_request(
    ses: Toolkit, api: respx.MockRouter
) -> None:
    with pytest.raises(InvalidInput, match="min 5 exceeds max 4"):
        await ses.call(
            "sesterce_create_endpoint",
            {**DOCUMENTED_CREATE, "regions": [documented_region(min=5)]},
            confirmer=Approve(),
        )
    with pytest.raises(InvalidInput, match="http_rate and http_window together"):
        await ses.call(
            "sesterce_create_endpoint",
            {**DOCUMENTED_CREATE, "regions": [documented_region(http_window=None)]},
            confirmer=Approve(),
        )
    assert not api.calls


async def test_refused_create_sends_nothing(ses: Toolkit, api: respx.MockRouter) -> None:
    catalogue(api)
    create = api.post("/ai-inference/instances")

    with pytest.raises(ConfirmationRefused):
        await ses.call("sesterce_create_endpoint", DOCUMENTED_CREATE, confirmer=Refuse())
    assert not create.called


async def test_policy_cap_uses_the_price_preview(api: respx.MockRouter) -> None:
    catalogue(api)
    create = api.post("/ai-inference/instances")
    capped = Toolkit(Settings(sesterce_api_key=KEY, max_usd_per_hour=1.0))
    try:
        with pytest.raises(PolicyRefused, match=r"\$1.44/hour is over the cap"):
            await capped.call("sesterce_create_endpoint", DOCUMENTED_CREATE, confirmer=Approve())
    finally:
        capped.close()
    assert not create.called


async def test_list_resources_parses_the_documented_instances(ses: Toolkit, api: respx.MockRouter) -> None:
    instances = api.get("/ai-inference/instances").respond(200, json=load("instances"))

    result = await ses.call("list_resources", {"provider": "sesterce"})

    assert_call(instances, "GET", "/ai-inference/instances")
    [resource] = result.items
    assert (resource.resource_id, resource.name, resource.status, resource.raw_status) == (
        INSTANCE,
        "example-inference-instance",
        "running",
        "ACTIVE",
    )
    assert resource.usd_per_hour == 2.55
    assert resource.details["features"] == ["chat"]


async def test_get_resource_parses_the_documented_detail(ses: Toolkit, api: respx.MockRouter) -> None:
    detail = api.get(f"/ai-inference/instances/{INSTANCE}").respond(200, json=load("instance_detail"))
    api.get("/ai-inference/hardwares").respond(200, json=load("hardwares"))

    resource = await ses.call("get_resource", {"provider": "sesterce", "resource_id": INSTANCE})

    assert sent(detail).headers["x-api-key"] == KEY
    assert isinstance(resource, Resource)
    assert (resource.status, resource.region, resource.replicas) == ("running", "78", 1)
    assert (resource.min_replicas, resource.max_replicas) == (1, 4)
    assert (resource.gpu_name, resource.gpu_count) == ("NVIDIA-L40S", 1)
    [container] = resource.details["containers"]
    assert container["deployStatus"] == {"total": 2, "ready": 1}
    assert resource.details["errors"] == [
        "region 78: Unexpected error occurred while launching the instance. Please contact the support team."
    ]
    assert resource.details["apiKeysIds"] == [REGISTRY]
    assert resource.details["envs"] == {"PORT": "***"}


async def test_get_resource_reveals_env_values_only_when_asked(ses: Toolkit, api: respx.MockRouter) -> None:
    api.get(f"/ai-inference/instances/{INSTANCE}").respond(200, json=load("instance_detail"))
    api.get("/ai-inference/hardwares").respond(200, json=load("hardwares"))

    resource = await ses.call(
        "get_resource", {"provider": "sesterce", "resource_id": INSTANCE, "reveal_secrets": True}
    )

    assert resource.details["envs"] == {"PORT": "3333"}


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("NEW", "pending"),
        ("PENDING", "pending"),
        ("DEPLOYING", "pending"),
        ("ACTIVE", "running"),
        ("PARTIALLYDEPLOYED", "running"),
        ("ERROR", "failed"),
        ("FAILED", "failed"),
        ("DISABLED", "stopped"),
        ("DELETING", "deleting"),
        ("DELETED", "deleting"),
        ("SOMETHINGNEW", "unknown"),
    ],
)
async def test_every_documented_status_is_normalized(
    ses: Toolkit, api: respx.MockRouter, raw: str, status: str
) -> None:
    api.get("/ai-inference/instances").respond(200, json=[{**load("instance"), "status": raw}])

    [resource] = (await ses.call("list_resources", {"provider": "sesterce"})).items

    assert (resource.status, resource.raw_status) == (status, raw)


async def test_update_endpoint_sends_the_documented_body(ses: Toolkit, api: respx.MockRouter) -> None:
    catalogue(api)
    api.get(f"/ai-inference/instances/{INSTANCE}").respond(200, json=load("instance_detail"))
    patch = api.patch(f"/ai-inference/instances/{INSTANCE}").respond(200, json=load("instance"))

    args = {k: v for k, v in DOCUMENTED_CREATE.items() if k != "name"}
    result = await ses.call(
        "sesterce_update_endpoint", {"resource_id": INSTANCE, **args}, confirmer=Approve()
    )

    assert_call(patch, "PATCH", f"/ai-inference/instances/{INSTANCE}", load("instance_update_request"))
    assert result.resource is not None and result.resource.raw_status == "ACTIVE"
    assert not any("does not report" in w for w in result.plan.warnings)


async def test_update_resource_scales_every_region_with_the_full_documented_body(
    ses: Toolkit, api: respx.MockRouter
) -> None:
    catalogue(api)
    api.post("/ai-inference/instances").respond(201, json=load("instance"))
    api.get(f"/ai-inference/instances/{INSTANCE}").respond(200, json=load("instance_detail"))
    await ses.call("sesterce_create_endpoint", DOCUMENTED_CREATE, confirmer=Approve())
    detail = load("instance_detail")
    second = json.loads(json.dumps(detail["containers"][0]))
    second["regionId"] = 18
    detail["containers"].append(second)
    api.get(f"/ai-inference/instances/{INSTANCE}").respond(200, json=detail)
    api.get("/ai-inference/regions").respond(200, json=load("regions"))
    patch = api.patch(f"/ai-inference/instances/{INSTANCE}").respond(200, json=load("instance"))

    result = await ses.call(
        "update_resource",
        {"provider": "sesterce", "resource_id": INSTANCE, "min_replicas": 2, "max_replicas": 6},
        confirmer=Approve(),
    )

    body = json.loads(sent(patch).content)
    assert [
        (c["regionId"], c["scale"]["min"], c["scale"]["max"]) for c in body["autoScalingConfigurations"]
    ] == [
        (78, 2, 6),
        (18, 2, 6),
    ]
    assert (
        body["autoScalingConfigurations"][0]["scale"]["triggers"]
        == detail["containers"][0]["scale"]["triggers"]
    )
    assert body["envs"] == {"PORT": "3333"}  # sent as they are, shown masked
    assert body["apiKeyIds"] == [REGISTRY]  # the detail's apiKeysIds, under the body's name
    assert (body["containerPort"], body["hardwareId"], body["podLifetime"]) == (80, L40S, 120)
    # Required by the documented PATCH, missing from the documented detail: taken from the create.
    assert (body["modelId"], body["registryId"]) == (MODEL, REGISTRY)
    assert result.plan.body["envs"] == {"PORT": "***"}
    assert "each of its 2 region(s) (78, 18), up to 12 replicas in total" in result.plan.action
    assert result.plan.gpus == 12


async def test_update_of_an_instance_made_elsewhere_needs_its_model_or_registry(
    ses: Toolkit, api: respx.MockRouter
) -> None:
    catalogue(api)
    api.get(f"/ai-inference/instances/{INSTANCE}").respond(200, json=load("instance_detail"))
    patch = api.patch(f"/ai-inference/instances/{INSTANCE}").respond(200, json=load("instance"))
    scale = {"provider": "sesterce", "resource_id": INSTANCE, "max_replicas": 6}

    with pytest.raises(
        InvalidInput, match="requires modelId and registryId.*sesterce_update_endpoint with model_id"
    ):
        await ses.call("update_resource", scale, confirmer=Approve())
    assert patch.call_count == 0

    await ses.call(
        "sesterce_update_endpoint",
        {"resource_id": INSTANCE, "model_id": MODEL, "pod_lifetime": 60},
        confirmer=Approve(),
    )
    body = json.loads(sent(patch).content)
    assert (body["modelId"], body["registryId"], body["podLifetime"]) == (MODEL, None, 60)


async def test_update_resource_refuses_what_sesterce_cannot_change(
    ses: Toolkit, api: respx.MockRouter
) -> None:
    with pytest.raises(InvalidInput, match="does not accept: name, gpu_type"):
        await ses.call(
            "update_resource",
            {"provider": "sesterce", "resource_id": INSTANCE, "name": "x", "gpu_type": "H100"},
            confirmer=Approve(),
        )
    assert not api.calls


async def test_stop_sends_post_and_accepts_204(ses: Toolkit, api: respx.MockRouter) -> None:
    detail = api.get(f"/ai-inference/instances/{INSTANCE}")
    detail.side_effect = [
        httpx.Response(200, json=load("instance_detail")),
        httpx.Response(200, json={**load("instance_detail"), "status": "DISABLED"}),
    ]
    api.get("/ai-inference/hardwares").respond(200, json=load("hardwares"))
    stop = api.post(f"/ai-inference/instances/{INSTANCE}/stop").respond(204)

    result = await ses.call(
        "stop_resource", {"provider": "sesterce", "resource_id": INSTANCE}, confirmer=Approve()
    )

    assert_call(stop, "POST", f"/ai-inference/instances/{INSTANCE}/stop")
    assert result.resource is not None
    assert (result.resource.status, result.resource.raw_status) == ("stopped", "DISABLED")


async def test_start_sends_post_and_accepts_204(ses: Toolkit, api: respx.MockRouter) -> None:
    catalogue(api)
    api.get(f"/ai-inference/instances/{INSTANCE}").respond(
        200, json={**load("instance_detail"), "status": "DISABLED"}
    )
    start = api.post(f"/ai-inference/instances/{INSTANCE}/start").respond(204)

    result = await ses.call(
        "start_resource", {"provider": "sesterce", "resource_id": INSTANCE}, confirmer=Approve()
    )

    assert_call(start, "POST", f"/ai-inference/instances/{INSTANCE}/start")
    assert result.plan.usd_per_hour_max == 1.44  # starting costs money again: priced first
    assert result.resource is not None and result.resource.resource_id == INSTANCE


async def test_start_reports_success_even_if_the_follow_up_read_fails(
    ses: Toolkit, api: respx.MockRouter
) -> None:
    catalogue(api)
    detail = api.get(f"/ai-inference/instances/{INSTANCE}")
    detail.side_effect = [
        httpx.Response(200, json={**load("instance_detail"), "status": "DISABLED"}),  # the plan
        httpx.Response(200, json={**load("instance_detail"), "status": "DISABLED"}),  # read again to send
        httpx.Response(404, json=load("error_404")),
    ]
    api.post(f"/ai-inference/instances/{INSTANCE}/start").respond(204)

    result = await ses.call(
        "start_resource", {"provider": "sesterce", "resource_id": INSTANCE}, confirmer=Approve()
    )

    assert result.outcome == "done"
    assert result.detail == {"resource_id": INSTANCE, "started": True}


async def test_delete_sends_delete_and_accepts_204(ses: Toolkit, api: respx.MockRouter) -> None:
    api.get(f"/ai-inference/instances/{INSTANCE}").respond(200, json=load("instance_detail"))
    delete = api.delete(f"/ai-inference/instances/{INSTANCE}").respond(204)

    result = await ses.call(
        "delete_resource", {"provider": "sesterce", "resource_id": INSTANCE}, confirmer=Approve()
    )

    assert_call(delete, "DELETE", f"/ai-inference/instances/{INSTANCE}")
    assert result.detail == {"deleted": INSTANCE}
    assert result.plan.reversible is False


# ---- errors -----------------------------------------------------------------------------------
async def test_documented_403_becomes_an_auth_error_with_the_message(
    ses: Toolkit, api: respx.MockRouter
) -> None:
    api.get("/ai-inference/registries").respond(403, json=load("error_403"))

    with pytest.raises(AuthError) as info:
        await ses.call("sesterce_list_registries", {})

    assert info.value.status == 403
    assert info.value.message == "API key invalid"
    assert KEY not in str(info.value)


async def test_documented_404_becomes_not_found_with_the_message(ses: Toolkit, api: respx.MockRouter) -> None:
    api.get("/ai-inference/instances/000000000000000000000000").respond(404, json=load("error_404"))

    with pytest.raises(NotFound) as info:
        await ses.call("get_resource", {"provider": "sesterce", "resource_id": "000000000000000000000000"})

    assert (info.value.status, info.value.message) == (404, "Not found")


async def test_a_list_valued_message_is_joined(ses: Toolkit, api: respx.MockRouter) -> None:
    """NestJS validation answers carry `message` as a list of strings."""
    catalogue(api)
    api.post("/ai-inference/instances").respond(
        400,
        json={
            "statusCode": 400,
            "timestamp": "2019-06-26T13:00:00.000Z",
            "path": "/ai-inference/instances",
            "message": ["containerPort must be a number", "name must be a string"],
        },
    )

    with pytest.raises(ProviderRejected, match="containerPort must be a number; name must be a string"):
        await ses.call("sesterce_create_endpoint", DOCUMENTED_CREATE, confirmer=Approve())
    [row] = (await ses.call("history", {})).items
    assert row.outcome == "failed"


async def test_a_failed_price_preview_leaves_the_cost_unknown(ses: Toolkit, api: respx.MockRouter) -> None:
    routes = catalogue(api)
    routes["pricing"].respond(400, json={**load("error_404"), "statusCode": 400, "message": "bad pricing"})

    result = await ses.call("sesterce_create_endpoint", {**DOCUMENTED_CREATE, "dry_run": True})

    assert result.plan.usd_per_hour is None and result.plan.usd_per_hour_max is None
    assert any("price preview failed" in w and "bad pricing" in w for w in result.plan.warnings)
