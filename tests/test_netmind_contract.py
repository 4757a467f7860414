"""NetMind adapter contract: the exact request of every documented operation, and how the documented
example answers parse.

Fixtures are the docs' examples verbatim (see tests/fixtures/netmind/README.md for the few `...`
placeholders that had to be filled in). Every mutation goes through the gate with `Approve()`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from gpu_tools import errors
from gpu_tools.gate import Approve
from gpu_tools.models import Resource
from gpu_tools.providers.netmind import adapter as netmind_adapter
from gpu_tools.settings import Settings
from gpu_tools.toolkit import Toolkit

pytestmark = pytest.mark.anyio

BASE = "https://api.netmind.ai"
KEY = "nm-test-key"
FIX = Path(__file__).parent / "fixtures" / "netmind"
SERVICE_ID = "9f1c2d3e4b5a46789a0b1c2d3e4f5a6b"  # filled in for the docs' "..." (fixtures README)
ENDPOINT = f"endpoint:{SERVICE_ID}"


def fixture(name: str) -> Any:
    return json.loads((FIX / name).read_text())


@pytest.fixture
def tk() -> Iterator[Toolkit]:
    toolkit = Toolkit(Settings(netmind_api_key=KEY))
    yield toolkit
    toolkit.close()


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    """The documented reads, answering the documented examples; tests add what they send."""
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        router.get("/v1/inference-service/flavor", name="flavors").respond(json=fixture("flavors.json"))
        router.get(f"/v1/inference-service/{SERVICE_ID}", name="endpoint").respond(
            json=fixture("endpoint_available.json")
        )
        router.get("/v1/rentgpu/machines", name="machines").respond(json=fixture("machines.json"))
        router.get("/v1/rentgpu/auths/1", name="auth").respond(json=fixture("auth.json"))
        router.get("/v1/rentgpu/images/1", name="image").respond(json=fixture("image.json"))
        router.get("/v1/rentgpu/containers/1", name="container").respond(json=fixture("container.json"))
        router.get("/v1/rentgpu/containers/", name="containers").respond(json=fixture("containers.json"))
        yield router


def request_of(route: respx.Route) -> httpx.Request:
    assert route.called, "the adapter did not call this route"
    request = route.calls.last.request
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert "gpu-tools" in request.headers["user-agent"]
    return request


def sent_json(route: respx.Route) -> Any:
    return json.loads(request_of(route).content)


def params(route: respx.Route) -> dict[str, str]:
    return dict(request_of(route).url.params)


def approve() -> Approve:
    return Approve()


# ---- dedicated endpoints -----------------------------------------------------------------------
async def test_flavors_become_endpoint_offers(tk: Toolkit, api: respx.MockRouter) -> None:
    result = await tk.call("list_offers", {"provider": "netmind", "kind": "endpoint"})
    assert params(api.routes["flavors"]) == {}
    offers = {o.offer_id: o for o in result.items}
    assert set(offers) == {"69475e82e81c4dd6be3467e2ca374e0c", "7b2f36d30e0743debc6c60d5017e2d16"}
    cn = offers["69475e82e81c4dd6be3467e2ca374e0c"]
    assert (cn.kind, cn.gpu_name, cn.gpu_model, cn.gpu_count) == (
        "endpoint",
        "NVIDIA_GeForce_RTX_4090",
        "RTX 4090",
        1,
    )
    assert (cn.region, cn.price, cn.currency, cn.usd_per_hour, cn.usd_per_gpu_hour) == (
        "cn",
        0.3,
        "USD",
        0.3,
        0.3,
    )
    assert cn.price_estimated is False and cn.available is True and cn.gpu_memory_gb == 24.0
    assert cn.details["billing"]["cny_price_unit"] == 2.2 and cn.details["node_max_gpu"] == 2
    assert offers["7b2f36d30e0743debc6c60d5017e2d16"].region == "other"


async def test_flavor_with_only_a_cny_price_is_converted_and_marked_estimated(
    tk: Toolkit, api: respx.MockRouter
) -> None:
    body = fixture("flavors.json")
    del body["flavor_list"][0]["billing"]["usd_price_unit"]
    api.get("/v1/inference-service/flavor").respond(json=body)
    offers = (await tk.call("list_offers", {"provider": "netmind", "kind": "endpoint", "region": "cn"})).items
    [offer] = offers
    assert offer.currency == "CNY" and offer.price == 2.2
    assert offer.usd_per_hour == pytest.approx(2.2 * tk.settings.usd_per_cny) and offer.price_estimated


async def test_create_endpoint_sends_the_documented_body(tk: Toolkit, api: respx.MockRouter) -> None:
    create = api.post("/v1/inference-service").respond(json=fixture("endpoint_created.json"))
    doc = fixture("create_endpoint_request.json")
    args = {
        "name": doc["name"],
        "description": doc["description"],
        "payment_type": doc["payment_type"],
        **doc["resource_metadata"],
        **doc["deploy_metadata"],
    }
    result = await tk.call("netmind_create_endpoint", args, confirmer=approve())
    assert create.calls.last.request.method == "POST"
    assert create.calls.last.request.headers["content-type"] == "application/json"
    assert sent_json(create) == doc
    r = result.resource
    assert isinstance(r, Resource)
    assert (r.resource_id, r.kind, r.status, r.raw_status) == (
        ENDPOINT,
        "endpoint",
        "pending",
        "initializing",
    )
    assert (r.name, r.gpu_name, r.replicas, r.region) == (
        "test-flask-server-9",
        "NVIDIA_GeForce_RTX_4090",
        1,
        "cn",
    )
    assert r.details["resource_metadata"]["VRAM"] == "32GB"
    assert r.url == f"https://api.deeptrin.com/inference-api/v1/inference_service/{SERVICE_ID}"
    # gpu_num 0 is billed as at least one GPU: 1 instance x 1 x $0.30.
    assert result.plan.usd_per_hour == pytest.approx(0.3) and result.plan.gpus == 1
    assert "usd_price_unit" in (result.plan.price_source or "")


async def test_get_endpoint_maps_documented_statuses(tk: Toolkit, api: respx.MockRouter) -> None:
    r = await tk.call("get_resource", {"provider": "netmind", "resource_id": ENDPOINT})
    assert request_of(api.routes["endpoint"]).method == "GET"
    assert (r.status, r.raw_status, r.replicas) == ("running", "available", 1)
    for raw, status in (
        ("initializing", "pending"),
        ("stopped", "stopped"),
        ("unavailable", "failed"),
        ("odd", "unknown"),
    ):
        api.get(f"/v1/inference-service/{SERVICE_ID}").respond(
            json={**fixture("endpoint_available.json"), "status": raw}
        )
        r = await tk.call("get_resource", {"provider": "netmind", "resource_id": ENDPOINT})
        assert (r.status, r.raw_status) == (status, raw)


async def test_list_resources_reads_back_created_endpoints_and_all_containers(
    tk: Toolkit, api: respx.MockRouter
) -> None:
    api.post("/v1/inference-service").respond(json=fixture("endpoint_created.json"))
    args = {
        "name": "svc",
        "flavor_id": "69475e82e81c4dd6be3467e2ca374e0c",
        "image_url": "python:3.10-slim",
        "port": 8080,
    }
    await tk.call("netmind_create_endpoint", args, confirmer=approve())
    result = await tk.call("list_resources", {"provider": "netmind"})
    assert [r.resource_id for r in result.items] == [ENDPOINT, "container:1"]
    assert params(api.routes["containers"]) == {"limit": "50"}
    container = result.items[1]
    assert (container.status, container.raw_status, container.gpu_count) == ("unknown", "0", 1)


async def test_a_container_walk_cut_short_is_reported_as_partial(
    tk: Toolkit, api: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(netmind_adapter, "PAGE", 1)
    monkeypatch.setattr(netmind_adapter, "MAX_PAGES", 2)
    body = fixture("containers.json")

    def page(request: httpx.Request) -> httpx.Response:
        marker = int(request.url.params.get("marker") or 0)
        return httpx.Response(200, json=[{**body[0], "id": marker + 1}])

    api.routes["containers"].mock(side_effect=page)
    result = await tk.call("list_resources", {"provider": "netmind"})
    assert [r.resource_id for r in result.items] == ["container:1", "container:2"]
    [status] = result.providers
    assert status.status == "partial" and "stopped after 2 pages of 1" in (status.message or "")


async def test_list_resources_skips_an_endpoint_deleted_elsewhere(tk: Toolkit, api: respx.MockRouter) -> None:
    api.post("/v1/inference-service").respond(json=fixture("endpoint_created.json"))
    args = {"name": "svc", "flavor_id": "69475e82e81c4dd6be3467e2ca374e0c", "image_url": "x", "port": 80}
    await tk.call("netmind_create_endpoint", args, confirmer=approve())
    api.get(f"/v1/inference-service/{SERVICE_ID}").respond(404, json={"detail": "Not Found"})
    result = await tk.call("list_resources", {"provider": "netmind"})
    assert [r.resource_id for r in result.items] == ["container:1"]


async def test_update_endpoint_puts_target_instance_number_as_documented(
    tk: Toolkit, api: respx.MockRouter
) -> None:
    put = api.put(f"/v1/inference-service/{SERVICE_ID}").respond(json=fixture("endpoint_updated.json"))
    result = await tk.call(
        "update_resource",
        {"provider": "netmind", "resource_id": ENDPOINT, "replicas": 2},
        confirmer=approve(),
    )
    assert sent_json(put) == fixture("update_endpoint_request.json")  # the number as a string, as documented
    assert result.plan.method == "PUT" and result.plan.usd_per_hour == pytest.approx(0.6)
    # The documented answer is parsed as printed (it still says 1 instance, status initializing).
    assert (result.resource.status, result.resource.raw_status, result.resource.replicas) == (
        "pending",
        "initializing",
        1,
    )


async def test_delete_endpoint_accepts_the_documented_empty_answer(
    tk: Toolkit, api: respx.MockRouter
) -> None:
    delete = api.delete(f"/v1/inference-service/{SERVICE_ID}").respond(200, content=b"")
    result = await tk.call(
        "delete_resource", {"provider": "netmind", "resource_id": ENDPOINT}, confirmer=approve()
    )
    assert request_of(delete).method == "DELETE" and request_of(delete).content == b""
    assert result.detail == {"deleted": ENDPOINT}
    assert result.plan.reversible is False


# ---- rent GPU: machines ------------------------------------------------------------------------
async def test_machines_send_every_documented_filter(tk: Toolkit, api: respx.MockRouter) -> None:
    filters = {
        "currency": "USD",
        "region": "us",
        "gpu": 2,
        "gpu_names": "NVIDIA_H100_SXM5_80GB,NVIDIA_GeForce_RTX_4090",
        "min_memory": 24,
        "max_memory": 80,
        "min_disk": 100,
        "max_disk": 2000,
        "min_price": 1,
        "max_price": 3,
    }
    result = await tk.call("netmind_list_machines", filters)
    assert params(api.routes["machines"]) == {
        k: str(v).upper() if k == "region" else str(v) for k, v in filters.items()
    }
    [offer] = result.items
    # The documented example, verbatim: "price": "text" has no readable number.
    assert (offer.kind, offer.offer_id, offer.gpu_name, offer.gpu_count, offer.region) == (
        "container",
        "text",
        "text",
        1,
        "text",
    )
    assert offer.price is None and offer.usd_per_hour is None and offer.currency == "USD"
    assert offer.details["nvlink_status"] is True and offer.details["cuda_version"] == "text"


async def test_machines_priced_in_cny_are_converted_and_marked_estimated(
    tk: Toolkit, api: respx.MockRouter
) -> None:
    route = api.get("/v1/rentgpu/machines").respond(
        json=[{**fixture("machines.json")[0], "price": "10", "gpu_count": 2}]
    )
    [offer] = (await tk.call("netmind_list_machines", {"currency": "CNY"})).items
    assert params(route) == {"currency": "CNY"}
    assert offer.price == 10 and offer.currency == "CNY" and offer.price_estimated
    assert offer.usd_per_gpu_hour == pytest.approx(10 * tk.settings.usd_per_cny)
    assert offer.usd_per_hour == pytest.approx(20 * tk.settings.usd_per_cny)


async def test_machines_become_container_offers_in_list_offers(tk: Toolkit, api: respx.MockRouter) -> None:
    route = api.get("/v1/rentgpu/machines").respond(
        json=[{**fixture("machines.json")[0], "price": "2.39", "gpu_count": 8}]
    )
    [offer] = (await tk.call("list_offers", {"provider": "netmind", "kind": "container"})).items
    assert params(route) == {}
    assert (offer.usd_per_gpu_hour, offer.usd_per_hour) == (pytest.approx(2.39), pytest.approx(19.12))


async def test_bad_machine_filters_are_refused_before_sending(tk: Toolkit, api: respx.MockRouter) -> None:
    with pytest.raises(errors.InvalidInput, match="region"):
        await tk.call("netmind_list_machines", {"region": "XX"})
    with pytest.raises(errors.InvalidInput, match="min_price"):
        await tk.call("netmind_list_machines", {"min_price": 5, "max_price": 1})
    assert not api.routes["machines"].called


# ---- rent GPU: auths ---------------------------------------------------------------------------
async def test_create_auth_posts_the_value_and_masks_it(tk: Toolkit, api: respx.MockRouter) -> None:
    create = api.post("/v1/rentgpu/auths/").respond(json=fixture("auth.json"))
    result = await tk.call("netmind_create_auth", {"value": "s3cret-pass-42"}, confirmer=approve())
    assert sent_json(create) == {"value": "s3cret-pass-42"}
    assert result.plan.body == {"value": "***"}
    assert result.detail == {"auth_id": 1, "value": "***", "created_at": "2025-05-29T04:47:41.008Z"}


async def test_create_auth_refuses_a_short_password_before_sending(
    tk: Toolkit, api: respx.MockRouter
) -> None:
    create = api.post("/v1/rentgpu/auths/")
    with pytest.raises(errors.InvalidInput, match="value"):
        await tk.call("netmind_create_auth", {"value": "short"}, confirmer=approve())
    assert not create.called


async def test_list_auths_pages_with_marker_and_limit(tk: Toolkit, api: respx.MockRouter) -> None:
    route = api.get("/v1/rentgpu/auths/").respond(json=fixture("auths.json"))
    page = await tk.call("netmind_list_auths", {"marker": 5, "limit": 1})
    assert params(route) == {"marker": "5", "limit": "1"}
    assert [(a.auth_id, a.value) for a in page.items] == [(1, "***")]
    assert page.next_marker == 1  # a full page: ask again from the last id
    page = await tk.call("netmind_list_auths", {})
    assert params(route) == {"limit": "10"} and page.next_marker is None


async def test_get_auth_masks_unless_revealed(tk: Toolkit, api: respx.MockRouter) -> None:
    masked = await tk.call("netmind_get_auth", {"auth_id": 1})
    assert request_of(api.routes["auth"]).url.path == "/v1/rentgpu/auths/1"
    assert (masked.auth_id, masked.value, masked.created_at) == (1, "***", "2025-05-29T04:47:41.008Z")
    shown = await tk.call("netmind_get_auth", {"auth_id": 1, "reveal_secrets": True})
    assert shown.value == "text"


# ---- rent GPU: images --------------------------------------------------------------------------
async def test_create_image_sends_the_documented_body(tk: Toolkit, api: respx.MockRouter) -> None:
    create = api.post("/v1/rentgpu/images/").respond(json=fixture("image.json"))
    doc = fixture("create_image_request.json")
    result = await tk.call("netmind_create_image", doc, confirmer=approve())
    assert sent_json(create) == doc
    assert result.plan.body["docker_passwd"] == "***"
    assert result.detail["image_id"] == 1 and result.detail["image_type"] == 2
    assert (
        result.detail["docker_passwd"] == "***"
        and result.detail["docker_registry"] == "https://index.docker.io/v1/"
    )


async def test_create_image_refuses_undocumented_options(tk: Toolkit, api: respx.MockRouter) -> None:
    create = api.post("/v1/rentgpu/images/")
    args = {"name": "n", "image_name": "pytorch/pytorch", "image_tag": "latest", "image_label": "pytorch"}
    with pytest.raises(errors.InvalidInput, match="--privileged"):
        await tk.call("netmind_create_image", {**args, "options": "-e A=1 --privileged"}, confirmer=approve())
    with pytest.raises(errors.InvalidInput, match="docker_username"):
        await tk.call("netmind_create_image", {**args, "docker_passwd": "pw"}, confirmer=approve())
    assert not create.called


async def test_list_images_filters_by_type_and_pages(tk: Toolkit, api: respx.MockRouter) -> None:
    route = api.get("/v1/rentgpu/images/").respond(json=fixture("images.json"))
    page = await tk.call("netmind_list_images", {"image_type": 2, "marker": "7", "limit": 1})
    assert params(route) == {"image_type": "2", "marker": "7", "limit": "1"}
    [image] = page.items
    assert (image.image_id, image.image_type, image.docker_passwd, image.image_name) == (1, 2, "***", "text")
    assert page.next_marker == "1"


async def test_get_image_masks_unless_revealed(tk: Toolkit, api: respx.MockRouter) -> None:
    image = await tk.call("netmind_get_image", {"image_id": 1})
    assert request_of(api.routes["image"]).url.path == "/v1/rentgpu/images/1"
    assert image.docker_passwd == "***" and image.created_at == "2025-05-29T04:47:41.008Z"
    assert (
        await tk.call("netmind_get_image", {"image_id": 1, "reveal_secrets": True})
    ).docker_passwd == "text"


async def test_official_images_are_the_templates(tk: Toolkit, api: respx.MockRouter) -> None:
    route = api.get("/v1/rentgpu/images/").respond(json=fixture("images.json"))
    [template] = (await tk.call("list_templates", {"provider": "netmind"})).items
    assert params(route) == {"limit": "50"}
    assert template.name == "text:text" and template.details["image_template_id"] == 1
    assert template.details["docker_passwd"] == "***"


# ---- rent GPU: containers ----------------------------------------------------------------------
async def test_create_container_sends_the_documented_body(tk: Toolkit, api: respx.MockRouter) -> None:
    create = api.post("/v1/rentgpu/containers/").respond(json=fixture("container.json"))
    doc = fixture("create_container_request.json")
    result = await tk.call("netmind_create_container", doc, confirmer=approve())
    assert sent_json(create) == doc
    assert api.routes["auth"].called and api.routes["image"].called  # checked before sending
    r = result.resource
    assert (r.resource_id, r.kind, r.status, r.raw_status, r.gpu_count) == (
        "container:1",
        "container",
        "unknown",
        "0",
        1,
    )
    assert r.details["ssh"] == "text" and r.details["image_template_id"] == 1
    assert any("payment_type 0" in w for w in result.plan.warnings)


async def test_create_container_refuses_unknown_node_auth_or_too_many_gpus(
    tk: Toolkit, api: respx.MockRouter
) -> None:
    create = api.post("/v1/rentgpu/containers/")
    doc = fixture("create_container_request.json")
    with pytest.raises(errors.InvalidInput, match="node_name 'nowhere'"):
        await tk.call("netmind_create_container", {**doc, "node_name": "nowhere"}, confirmer=approve())
    with pytest.raises(errors.InvalidInput, match="more than the 1 GPU"):
        await tk.call("netmind_create_container", {**doc, "gpu": 2}, confirmer=approve())
    api.get("/v1/rentgpu/auths/9").respond(404, json={"detail": "Not Found"})
    with pytest.raises(errors.InvalidInput, match="auth_id 9 does not exist"):
        await tk.call("netmind_create_container", {**doc, "auth_id": 9}, confirmer=approve())
    assert not create.called


async def test_list_containers_one_page(tk: Toolkit, api: respx.MockRouter) -> None:
    page = await tk.call("netmind_list_containers", {"limit": 1, "marker": 3})
    assert params(api.routes["containers"]) == {"limit": "1", "marker": "3"}
    assert [r.resource_id for r in page.items] == ["container:1"] and page.next_marker == 1


async def test_list_resources_follows_container_markers(tk: Toolkit, api: respx.MockRouter) -> None:
    one = fixture("container.json")

    def pages(request: httpx.Request) -> httpx.Response:
        marker = int(request.url.params.get("marker", 0))
        ids = range(marker + 1, min(marker + 50, 60) + 1)
        return httpx.Response(200, json=[{**one, "id": i} for i in ids])

    route = api.get("/v1/rentgpu/containers/").mock(side_effect=pages)
    result = await tk.call("list_resources", {"provider": "netmind"})
    assert [dict(c.request.url.params) for c in route.calls] == [
        {"limit": "50"},
        {"limit": "50", "marker": "50"},
    ]
    assert [r.resource_id for r in result.items] == [f"container:{i}" for i in range(1, 61)]


async def test_get_container(tk: Toolkit, api: respx.MockRouter) -> None:
    r = await tk.call("get_resource", {"provider": "netmind", "resource_id": "container:1"})
    assert request_of(api.routes["container"]).url.path == "/v1/rentgpu/containers/1"
    assert (r.name, r.status, r.raw_status, r.url) == ("text", "unknown", "0", "text")
    assert "not publish" in r.details["status_meaning"]


async def test_stop_container_posts_without_body(tk: Toolkit, api: respx.MockRouter) -> None:
    stop = api.post("/v1/rentgpu/containers/1/stop").respond(json=fixture("container.json"))
    result = await tk.call(
        "stop_resource", {"provider": "netmind", "resource_id": "container:1"}, confirmer=approve()
    )
    assert request_of(stop).content == b""
    assert result.resource.resource_id == "container:1" and result.plan.reversible


async def test_restart_container_is_start_resource(tk: Toolkit, api: respx.MockRouter) -> None:
    restart = api.post("/v1/rentgpu/containers/1/restart").respond(json=fixture("container.json"))
    result = await tk.call(
        "start_resource", {"provider": "netmind", "resource_id": "container:1"}, confirmer=approve()
    )
    assert request_of(restart).content == b""
    assert result.plan.path == "/v1/rentgpu/containers/1/restart"
    assert result.resource.raw_status == "0"


async def test_delete_container_parses_the_documented_answer(tk: Toolkit, api: respx.MockRouter) -> None:
    delete = api.delete("/v1/rentgpu/containers/1").respond(json=fixture("container.json"))
    result = await tk.call(
        "delete_resource", {"provider": "netmind", "resource_id": "container:1"}, confirmer=approve()
    )
    assert request_of(delete).method == "DELETE"
    assert result.resource.resource_id == "container:1" and result.plan.reversible is False


# ---- what NetMind lacks, and bad ids --------------------------------------------------------------
async def test_unsupported_lifecycle_calls_name_what_to_do_instead(
    tk: Toolkit, api: respx.MockRouter
) -> None:
    with pytest.raises(errors.Unsupported, match="update_resource"):
        await tk.call("stop_resource", {"provider": "netmind", "resource_id": ENDPOINT}, confirmer=approve())
    with pytest.raises(errors.Unsupported, match="netmind_create_endpoint"):
        await tk.call("start_resource", {"provider": "netmind", "resource_id": ENDPOINT}, confirmer=approve())
    with pytest.raises(errors.Unsupported, match="netmind_create_container"):
        await tk.call(
            "update_resource",
            {"provider": "netmind", "resource_id": "container:1", "replicas": 2},
            confirmer=approve(),
        )
    assert not api.calls  # refused from the id alone: nothing read, nothing sent
    refused = tk.journal.entries(outcome="refused")[0]  # every refusal leaves a row, unplanned
    assert len(refused) == 3 and all("could not be made" in (e.error or "") for e in refused)


async def test_endpoint_update_refuses_what_netmind_cannot_change(tk: Toolkit, api: respx.MockRouter) -> None:
    ref = {"provider": "netmind", "resource_id": ENDPOINT}
    with pytest.raises(errors.InvalidInput, match="min_replicas"):
        await tk.call("update_resource", {**ref, "min_replicas": 1, "max_replicas": 3}, confirmer=approve())
    with pytest.raises(errors.InvalidInput, match="scaling to zero"):
        await tk.call("update_resource", {**ref, "replicas": 0}, confirmer=approve())


@pytest.mark.parametrize("bad", ["abc", "endpoint:", "container:x1", "endpoint:a/b", "instance:1", "1"])
async def test_resource_ids_must_name_their_product(tk: Toolkit, api: respx.MockRouter, bad: str) -> None:
    with pytest.raises(
        errors.InvalidInput, match="endpoint:<service_id> or container:<container_id>|not a valid id"
    ):
        await tk.call("get_resource", {"provider": "netmind", "resource_id": bad})
    assert not api.calls


async def test_unknown_flavor_and_too_many_gpus_are_refused_before_sending(
    tk: Toolkit, api: respx.MockRouter
) -> None:
    create = api.post("/v1/inference-service")
    base = {"name": "x", "image_url": "python:3.10-slim", "port": 8080}
    with pytest.raises(errors.InvalidInput, match="7b2f36d30e0743debc6c60d5017e2d16"):
        await tk.call("netmind_create_endpoint", {**base, "flavor_id": "nope"}, confirmer=approve())
    with pytest.raises(errors.InvalidInput, match="node_max_gpu 2"):
        await tk.call(
            "netmind_create_endpoint",
            {**base, "flavor_id": "69475e82e81c4dd6be3467e2ca374e0c", "gpu_num": 3},
            confirmer=approve(),
        )
    assert not create.called


# ---- error mapping -----------------------------------------------------------------------------
async def test_401_is_an_auth_error_with_the_provider_message(tk: Toolkit, api: respx.MockRouter) -> None:
    api.get("/v1/rentgpu/containers/1").respond(401, json={"detail": "Invalid token"})
    with pytest.raises(errors.AuthError, match="Invalid token") as info:
        await tk.call("get_resource", {"provider": "netmind", "resource_id": "container:1"})
    assert info.value.status == 401 and KEY not in str(info.value)


async def test_404_is_not_found(tk: Toolkit, api: respx.MockRouter) -> None:
    api.get(f"/v1/inference-service/{SERVICE_ID}").respond(
        404, json={"detail": "inference service not found"}
    )
    with pytest.raises(errors.NotFound, match="inference service not found"):
        await tk.call("get_resource", {"provider": "netmind", "resource_id": ENDPOINT})


async def test_422_fastapi_detail_is_a_rejection_naming_the_field(tk: Toolkit, api: respx.MockRouter) -> None:
    api.post("/v1/inference-service").respond(422, json=fixture("error_422.json"))
    args = {"name": "x", "flavor_id": "69475e82e81c4dd6be3467e2ca374e0c", "image_url": "i", "port": 80}
    with pytest.raises(errors.ProviderRejected, match="resource_metadata.flavor_id: field required"):
        await tk.call("netmind_create_endpoint", args, confirmer=approve())
    [row] = tk.journal.entries()[0]
    assert row.outcome == "failed" and "flavor_id" in (row.error or "")


async def test_500_is_provider_unavailable(tk: Toolkit, api: respx.MockRouter) -> None:
    api.get("/v1/rentgpu/auths/1").respond(500, json={"detail": "Internal Server Error"})
    with pytest.raises(errors.ProviderUnavailable, match="Internal Server Error"):
        await tk.call("netmind_get_auth", {"auth_id": 1})


async def test_a_malformed_answer_is_reported_not_crashed_on(tk: Toolkit, api: respx.MockRouter) -> None:
    api.get("/v1/inference-service/flavor").respond(json={"flavors": "?"})
    with pytest.raises(errors.MalformedResponse) as info:
        await tk.adapter("netmind").list_offers()
    assert str(info.value) == (
        "netmind: GET /v1/inference-service/flavor answered unreadable JSON at flavor_list: Field required."
    )
