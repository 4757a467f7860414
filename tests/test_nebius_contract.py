"""Nebius adapter contract: the exact requests it sends and how it reads the answers.

The Nebius page shows no JSON bodies, so fixtures follow the fields listed in provider-notes.md
(create body and endpoint object); both documented templates shapes are tested.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import respx

from gpu_tools import errors
from gpu_tools.gate import Approve
from gpu_tools.settings import Settings
from gpu_tools.toolkit import Toolkit

pytestmark = pytest.mark.anyio

BASE = "https://api.tokenfactory.nebius.com"
KEY = "nb-secret-key-123456"
FIX = Path(__file__).parent / "fixtures" / "nebius"


def fixture(name: str) -> object:
    return json.loads((FIX / name).read_text())


@pytest.fixture
def tk() -> Iterator[Toolkit]:
    toolkit = Toolkit(Settings(nebius_api_key=KEY, http_retries=2))
    yield toolkit
    toolkit.close()


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        router.get("/v0/dedicated_endpoints/templates").respond(json=fixture("templates_list_shape.json"))
        router.get("/v0/dedicated_endpoints").respond(json={"endpoints": [fixture("endpoint.json")]})
        yield router


def sent_json(route: respx.Route) -> object:
    return json.loads(route.calls.last.request.content)


def assert_auth(route: respx.Route) -> None:
    request = route.calls.last.request
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert "gpu-tools" in request.headers["user-agent"]


async def test_templates_list_shape(tk: Toolkit, api: respx.MockRouter) -> None:
    result = await tk.call("list_templates", {"provider": "nebius"})
    [t] = result.items
    assert t.name == "openai/gpt-oss-120b"
    assert t.flavors == ["base", "fast"]
    assert t.gpu_types == ["gpu-h100-sxm", "gpu-h200-sxm"]
    assert t.gpu_counts == [1, 2] and t.regions == ["eu-north1", "us-central1"]
    assert_auth(api.routes[0])


async def test_templates_map_shape(tk: Toolkit, api: respx.MockRouter) -> None:
    api.get("/v0/dedicated_endpoints/templates").respond(json=fixture("templates_map_shape.json"))
    [t] = (await tk.call("list_templates", {"provider": "nebius"})).items
    assert t.flavors == ["base", "fast"]
    assert t.gpu_types == ["gpu-h100-sxm", "gpu-h200-sxm"]
    assert t.gpu_counts == [1] and t.regions == ["eu-north1", "eu-west1"]


async def test_offers_and_regions_derive_from_templates(tk: Toolkit, api: respx.MockRouter) -> None:
    offers = (await tk.call("list_offers", {"provider": "nebius", "gpu": "H200"})).items
    assert {(o.gpu_name, o.gpu_count, o.region) for o in offers} == {
        ("gpu-h200-sxm", 1, "eu-north1"),
        ("gpu-h200-sxm", 2, "eu-north1"),
        ("gpu-h200-sxm", 1, "us-central1"),
        ("gpu-h200-sxm", 2, "us-central1"),
    }
    assert all(o.gpu_model == "H200" and o.price is None for o in offers)
    regions = (await tk.call("list_regions", {"provider": "nebius"})).items
    assert [r.region_id for r in regions] == ["eu-north1", "us-central1"]


async def test_list_and_get_map_the_endpoint_object(tk: Toolkit, api: respx.MockRouter) -> None:
    [r] = (await tk.call("list_resources", {"provider": "nebius"})).items
    assert (r.resource_id, r.status, r.raw_status, r.replicas, r.min_replicas, r.max_replicas) == (
        "dep-e00abc123",
        "running",
        "running",
        1,
        1,
        2,
    )
    assert r.model == "openai/gpt-oss-20b-abc123"
    assert r.url == "https://api.tokenfactory.nebius.com/v1/chat/completions"
    got = await tk.call("get_resource", {"provider": "nebius", "resource_id": "dep-e00abc123"})
    assert got.name == "my-endpoint"
    with pytest.raises(errors.NotFound, match="dep-nope"):
        await tk.call("get_resource", {"provider": "nebius", "resource_id": "dep-nope"})


@pytest.mark.parametrize(
    ("enabled", "deployment", "status"),
    [
        (True, "starting", "pending"),
        (True, "updating", "pending"),
        (False, "stopped", "stopped"),
        (False, None, "stopped"),
        (True, "error", "failed"),
        (True, "something-new", "unknown"),
    ],
)
async def test_status_mapping(
    tk: Toolkit, api: respx.MockRouter, enabled: bool, deployment: str | None, status: str
) -> None:
    ep = {
        **fixture("endpoint.json"),
        "enabled": enabled,
        "deployment": {"status": deployment} if deployment else None,
    }
    api.get("/v0/dedicated_endpoints").respond(json={"endpoints": [ep]})
    [r] = (await tk.call("list_resources", {"provider": "nebius"})).items
    assert r.status == status
    assert r.raw_status == (deployment or "disabled")


async def test_create_sends_documented_body(tk: Toolkit, api: respx.MockRouter) -> None:
    route = api.post("/v0/dedicated_endpoints").respond(json=fixture("create_response.json"))
    args = {
        "name": "my-endpoint",
        "description": "demo",
        "model_name": "openai/gpt-oss-120b",
        "flavor_name": "base",
        "gpu_type": "gpu-h100-sxm",
        "gpu_count": 2,
        "region": "us-central1",
        "min_replicas": 1,
        "max_replicas": 2,
    }
    result = await tk.call("nebius_create_endpoint", args, confirmer=Approve())
    assert sent_json(route) == {
        "name": "my-endpoint",
        "description": "demo",
        "model_name": "openai/gpt-oss-120b",
        "flavor_name": "base",
        "gpu_type": "gpu-h100-sxm",
        "gpu_count": 2,
        "region": "us-central1",
        "scaling": {"min_replicas": 1, "max_replicas": 2},
    }
    assert_auth(route)
    assert result.resource.resource_id == "dep-e00new001"
    assert result.resource.model == "openai/gpt-oss-20b-new001"
    assert result.plan.gpus == 4


async def test_create_refuses_values_the_templates_do_not_offer(tk: Toolkit, api: respx.MockRouter) -> None:
    route = api.post("/v0/dedicated_endpoints")
    base = {
        "name": "x",
        "model_name": "openai/gpt-oss-120b",
        "flavor_name": "base",
        "gpu_type": "gpu-h100-sxm",
    }
    with pytest.raises(errors.InvalidInput, match="region 'eu-west1' is not offered"):
        await tk.call("nebius_create_endpoint", {**base, "region": "eu-west1"}, confirmer=Approve())
    with pytest.raises(errors.InvalidInput, match="no template for model"):
        await tk.call("nebius_create_endpoint", {**base, "model_name": "x/y"}, confirmer=Approve())
    with pytest.raises(errors.InvalidInput, match="min_replicas"):
        await tk.call(
            "nebius_create_endpoint", {**base, "min_replicas": 3, "max_replicas": 1}, confirmer=Approve()
        )
    assert not route.called


async def test_update_patches_only_given_fields(tk: Toolkit, api: respx.MockRouter) -> None:
    route = api.patch("/v0/dedicated_endpoints/dep-e00abc123").respond(json=fixture("endpoint.json"))
    await tk.call(
        "update_resource",
        {"provider": "nebius", "resource_id": "dep-e00abc123", "max_replicas": 4, "description": "bigger"},
        confirmer=Approve(),
    )
    assert sent_json(route) == {"description": "bigger", "scaling": {"min_replicas": 1, "max_replicas": 4}}
    await tk.call(
        "update_resource",
        {"provider": "nebius", "resource_id": "dep-e00abc123", "replicas": 3},
        confirmer=Approve(),
    )
    assert sent_json(route) == {"scaling": {"min_replicas": 3, "max_replicas": 3}}
    await tk.call(
        "update_resource",
        {
            "provider": "nebius",
            "resource_id": "dep-e00abc123",
            "gpu_type": "gpu-h200-sxm",
            "gpu_count": 2,
            "name": "renamed",
        },
        confirmer=Approve(),
    )
    assert sent_json(route) == {"name": "renamed", "gpu_type": "gpu-h200-sxm", "gpu_count": 2}
    assert_auth(route)


async def test_stop_and_start_patch_enabled(tk: Toolkit, api: respx.MockRouter) -> None:
    route = api.patch("/v0/dedicated_endpoints/dep-e00abc123").respond(json=fixture("endpoint.json"))
    ref = {"provider": "nebius", "resource_id": "dep-e00abc123"}
    with pytest.raises(
        errors.InvalidInput, match=r"is running \(enabled\): start_resource starts a stopped one"
    ):
        await tk.call("start_resource", ref, confirmer=Approve())
    assert not route.called
    await tk.call("stop_resource", ref, confirmer=Approve())
    assert sent_json(route) == {"enabled": False}
    disabled = {**fixture("endpoint.json"), "enabled": False}
    api.get("/v0/dedicated_endpoints").respond(json={"endpoints": [disabled]})
    with pytest.raises(errors.InvalidInput, match=r"is stopped \(disabled\): nothing to stop"):
        await tk.call("stop_resource", ref, confirmer=Approve())
    await tk.call("start_resource", ref, confirmer=Approve())
    assert sent_json(route) == {"enabled": True} and route.call_count == 2


async def test_delete(tk: Toolkit, api: respx.MockRouter) -> None:
    route = api.delete("/v0/dedicated_endpoints/dep-e00abc123").respond(204)
    result = await tk.call(
        "delete_resource", {"provider": "nebius", "resource_id": "dep-e00abc123"}, confirmer=Approve()
    )
    assert route.called and result.detail == {"deleted": "dep-e00abc123"}
    assert result.plan.reversible is False
    assert_auth(route)


async def test_chat_goes_to_the_region_inference_url_with_routing_key(
    tk: Toolkit, api: respx.MockRouter
) -> None:
    ep = {**fixture("endpoint.json"), "region": "us-central1"}
    api.get("/v0/dedicated_endpoints").respond(json={"endpoints": [ep]})
    with respx.mock(base_url="https://api.tokenfactory.us-central1.nebius.com") as inference:
        route = inference.post("/v1/chat/completions").respond(json=fixture("chat_completion.json"))
        answer = await tk.call(
            "chat",
            {
                "provider": "nebius",
                "resource_id": "dep-e00abc123",
                "message": "Hi",
                "system": "Be brief",
                "max_tokens": 16,
                "temperature": 0.2,
            },
        )
    assert sent_json(route) == {
        "model": "openai/gpt-oss-20b-abc123",
        "messages": [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}],
        "max_tokens": 16,
        "temperature": 0.2,
    }
    assert route.calls.last.request.headers["authorization"] == f"Bearer {KEY}"
    assert answer.content == "Hello!" and answer.usage["total_tokens"] == 7


async def test_chat_404_while_starting_says_so(tk: Toolkit, api: respx.MockRouter) -> None:
    api.post("/v1/chat/completions").respond(404, json={"detail": "Model not found"})
    with pytest.raises(errors.NotFound, match="may still be starting"):
        await tk.call("chat", {"provider": "nebius", "resource_id": "dep-e00abc123", "message": "Hi"})


@pytest.mark.parametrize(
    ("status", "body", "error", "text"),
    [
        (401, {"detail": "Invalid API key"}, errors.AuthError, "Invalid API key"),
        (403, {"detail": "Forbidden"}, errors.AuthError, "Forbidden"),
        (404, {"detail": "not here"}, errors.NotFound, "not here"),
        (
            422,
            {
                "detail": [
                    {
                        "loc": ["body", "gpu_count"],
                        "msg": "Input should be a valid integer",
                        "type": "int_type",
                    }
                ]
            },
            errors.ProviderRejected,
            "gpu_count: Input should be a valid integer",
        ),
        (429, {"detail": "slow down"}, errors.RateLimited, "slow down"),
        # A 5xx to a create may come after the provider acted: the outcome is unknown, never "failed".
        (500, {"detail": "boom"}, errors.OutcomeUnknown, "boom"),
        (503, "<html>down</html>", errors.OutcomeUnknown, "down"),
    ],
)
async def test_errors_are_typed_and_carry_the_provider_message(
    tk: Toolkit, api: respx.MockRouter, status: int, body: object, error: type, text: str
) -> None:
    kwargs = {"json": body} if not isinstance(body, str) else {"text": body}
    api.post("/v0/dedicated_endpoints").respond(status, **kwargs)
    args = {
        "name": "x",
        "model_name": "openai/gpt-oss-120b",
        "flavor_name": "base",
        "gpu_type": "gpu-h100-sxm",
    }
    with pytest.raises(error) as info:
        await tk.call("nebius_create_endpoint", args, confirmer=Approve())
    assert text in str(info.value) and f"HTTP {status}" in str(info.value)
    assert KEY not in str(info.value)
    rows, _ = tk.journal.entries()
    expected = "unknown" if error is errors.OutcomeUnknown else "failed"
    assert rows[0].outcome == expected and text in (rows[0].error or "")


async def test_malformed_json_and_timeouts(tk: Toolkit, api: respx.MockRouter) -> None:
    api.get("/v0/dedicated_endpoints").respond(200, text="not json{")
    with pytest.raises(errors.MalformedResponse, match="not JSON"):
        await tk.call("get_resource", {"provider": "nebius", "resource_id": "x"})
    api.get("/v0/dedicated_endpoints").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(errors.ProviderTimeout):
        await tk.call("get_resource", {"provider": "nebius", "resource_id": "x"})
