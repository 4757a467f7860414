"""NeoLink AI contract: the exact requests the adapter sends, and the documented answers it reads.

Every documented operation of provider-docs/neolink-computing-api.md has a test here asserting the
method, path, query, both headers (`namespace`, `Authorization: bearer`) and the JSON body, and
parsing the documented example response saved verbatim under tests/fixtures/neolink/.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from gpu_tools.errors import (
    AuthError,
    InvalidInput,
    MalformedResponse,
    NotConfigured,
    NotFound,
    ProviderRejected,
    ProviderUnavailable,
    Unsupported,
)
from gpu_tools.gate import Approve
from gpu_tools.models import Listing, MutationResult, Offer, Plan, Region, Resource
from gpu_tools.settings import Settings
from gpu_tools.toolkit import Toolkit, registry
from tests.conftest import FIXTURES

pytestmark = pytest.mark.anyio

BASE = "https://neolink-ai.com/mdc/api/v1"
TOKEN = "nl-test-token"
NAMESPACE = "user-123"
BEIJING = "14c5a9e3-0d09-4aa0-99d3-c096b80cceaa"
INSTANCES = "/clusters/host-cluster/instances"
LIST_PASSWORD = "kEyIX5R2dqJD"
LIST_JUPYTER_TOKEN = "7d27443c5718e75bee2da9f92fe6a50c"
GET_PASSWORD = "RuRbjZLWklIC"
GET_JUPYTER_TOKEN = "23a7676a0d18451dee9c08c3649a8288"
IMAGE = "images.neolink-ai.com/matrixdc/tensorflow:2.15.0-python3.10-cuda12.1.0-cudnn8-devel-ubuntu22.04"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / "neolink" / name).read_text(encoding="utf-8"))


def skus_with_4090(selling_type: str = "1") -> list[dict[str, Any]]:
    """The documented SKU list plus the 4090 SKU "66" that the documented create example uses."""
    skus = fixture("skus_computings.json")
    extra = copy.deepcopy(skus[0])
    extra.update(
        name="4090", gpuProduct="4090", gpuMemory=24, skusID="66", price=2.5, sellingType=selling_type
    )
    return [*skus, extra]


def assert_auth(request: httpx.Request) -> None:
    assert request.headers["namespace"] == NAMESPACE
    assert request.headers["authorization"] == f"bearer {TOKEN}"


@pytest.fixture
def nl() -> Iterator[Toolkit]:
    toolkit = Toolkit(Settings(neolink_api_token=TOKEN, neolink_namespace=NAMESPACE))
    yield toolkit
    toolkit.close()


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


def mock_get_instance(
    api: respx.MockRouter, name: str = "instance-4ca9xxxx", status: str = "Running"
) -> respx.Route:
    api.get("/regions").respond(json=fixture("regions.json"))
    answer = {**fixture("get_instance_response.json"), "status": status}
    return api.get(f"{INSTANCES}/{name}").respond(json=answer)


def test_every_documented_operation_is_in_the_registry() -> None:
    names = registry().names()
    for name in (
        "list_regions",  # GET /regions
        "list_offers",  # GET /skus/computings (every region)
        "neolink_list_skus",  # GET /skus/computings (one region)
        "neolink_create_instance",  # POST /clusters/{cluster}/instances
        "list_resources",  # GET /clusters/{cluster}/instances
        "get_resource",  # GET /clusters/{cluster}/instances/{name}
        "stop_resource",  # POST .../power_off
        "start_resource",  # POST .../power_on
        "delete_resource",  # DELETE /clusters/{cluster}/instances?name=
    ):
        assert name in names, name


async def test_list_regions_sends_the_documented_get_and_reads_the_example(
    nl: Toolkit, api: respx.MockRouter
) -> None:
    route = api.get("/regions").respond(json=fixture("regions.json"))
    result = await nl.call("list_regions", {"provider": "neolink"})
    assert isinstance(result, Listing)
    request = route.calls.last.request
    assert request.method == "GET" and request.url == f"{BASE}/regions"
    assert_auth(request)
    [region] = result.items
    assert isinstance(region, Region)
    assert region.region_id == BEIJING
    assert region.name == "北京一区"
    assert region.details["cluster_name"] == "host-cluster"
    assert region.details["harbor_addr"] == "images.neolink-ai.com"


async def test_list_offers_reads_the_sku_example_with_price_currency_and_billing(
    nl: Toolkit, api: respx.MockRouter
) -> None:
    api.get("/regions").respond(json=fixture("regions.json"))
    route = api.get("/skus/computings").respond(json=fixture("skus_computings.json"))
    result = await nl.call("list_offers", {"provider": "neolink"})
    request = route.calls.last.request
    assert request.method == "GET"
    assert request.url.path == "/mdc/api/v1/skus/computings"
    assert dict(request.url.params) == {"region_id": BEIJING}
    assert_auth(request)
    [offer] = result.items
    assert isinstance(offer, Offer)
    assert offer.kind == "instance" and offer.offer_id == "2"
    assert (offer.gpu_name, offer.gpu_model, offer.gpu_count, offer.gpu_memory_gb) == ("H20", "H20", 1, 96)
    assert (offer.vcpu, offer.ram_gb, offer.region) == (24, 192, "北京一区")
    assert (offer.price, offer.currency) == (10, "CNY")
    assert offer.usd_per_hour == pytest.approx(1.4) and offer.price_estimated is True
    assert offer.available is True
    d = offer.details
    assert d["billing_type"] == "pay-as-you-go" and d["cost_type"] == "1"
    assert d["remain_gpus"] == 8
    assert (d["system_storage_gb"], d["data_storage_gb"]) == (30, 50)
    assert d["discount"] == {
        "discount_id": "10000",
        "ratio": 0.48,
        "starts": "2024-08-15T15:26:38+08:00",
        "ends": "2024-10-01T00:05:00+08:00",
    }
    assert "estimate" in d["usd_note"] and "CNY" in d["usd_note"]


async def test_usd_estimate_follows_the_configured_rate(api: respx.MockRouter) -> None:
    api.get("/regions").respond(json=fixture("regions.json"))
    api.get("/skus/computings").respond(json=fixture("skus_computings.json"))
    toolkit = Toolkit(Settings(neolink_api_token=TOKEN, neolink_namespace=NAMESPACE, usd_per_cny=0.2))
    try:
        [offer] = (await toolkit.call("list_offers", {"provider": "neolink"})).items
    finally:
        toolkit.close()
    assert offer.usd_per_hour == pytest.approx(2.0)
    assert "usd_per_cny=0.2" in offer.details["usd_note"]


async def test_neolink_list_skus_asks_for_one_region_named_by_its_cluster(
    nl: Toolkit, api: respx.MockRouter
) -> None:
    api.get("/regions").respond(json=fixture("regions.json"))
    route = api.get("/skus/computings", params={"region_id": BEIJING}).respond(json=skus_with_4090())
    result = await nl.call("neolink_list_skus", {"region_id": "host-cluster"})
    assert route.call_count == 1
    assert [o.offer_id for o in result.items] == ["2", "66"]
    assert result.items[1].usd_per_gpu_hour == pytest.approx(0.35)


async def test_create_sends_the_documented_body_and_reads_the_example(
    nl: Toolkit, api: respx.MockRouter
) -> None:
    api.get("/regions").respond(json=fixture("regions.json"))
    api.get("/skus/computings").respond(json=skus_with_4090())
    route = api.post(INSTANCES).respond(json=fixture("create_instance_response.json"))
    result = await nl.call(
        "neolink_create_instance",
        {
            "display_name": "test1",
            "image": IMAGE,
            "gpu_sku_id": 66,
            "cost_type": 1,
            "disk_sku_id": "1",
            "volume_path": "/root/data",
            "volume_size": 50,
            "volume_type": "shared-filesystem",
        },
        confirmer=Approve(),
    )
    request = route.calls.last.request
    assert request.method == "POST" and request.url == f"{BASE}{INSTANCES}"
    assert_auth(request)
    expected = fixture("create_instance_request.json")
    expected["namespace"] = NAMESPACE
    assert json.loads(request.content) == expected

    assert isinstance(result, MutationResult) and result.outcome == "done"
    plan = result.plan
    assert plan.path == INSTANCES and plan.gpus == 1 and plan.gpu_name == "4090"
    assert plan.usd_per_hour == pytest.approx(2.5 * 0.14)
    assert "CNY" in (plan.price_source or "") and "estimate" in (plan.price_source or "")
    assert "pay-as-you-go" in plan.action and plan.reversible
    resource = result.resource
    assert isinstance(resource, Resource)
    assert resource.resource_id == "instance-ccffxxxx" and resource.name == "test1"
    assert (resource.status, resource.raw_status) == ("pending", "Creating")
    assert (resource.gpu_name, resource.gpu_count, resource.region) == ("4090", 1, "host-cluster")
    assert resource.details["billing_type"] == "pay-as-you-go"
    assert resource.details["gpu_sku_id"] == "66"


async def test_create_prepaid_names_the_billing_type_and_term(nl: Toolkit, api: respx.MockRouter) -> None:
    api.get("/regions").respond(json=fixture("regions.json"))
    api.get("/skus/computings").respond(json=skus_with_4090(selling_type="4"))
    route = api.post(INSTANCES)
    result = await nl.call(
        "neolink_create_instance",
        {
            "display_name": "d",
            "image": IMAGE,
            "gpu_sku_id": "66",
            "cost_type": 4,
            "cost_time": "3D",
            "dry_run": True,
        },
    )
    assert result.outcome == "dry_run" and not route.called
    plan = result.plan
    assert "daily" in plan.action and "3D" in plan.action and "3 days" in plan.action
    assert plan.body["Cost"] == {
        "CostType": "4",
        "CouponID": "",
        "DiskSKUID": "1",
        "GPUSKUID": "66",
        "CostTime": "3D",
    }
    assert plan.body["VolumeMount"] == [{"PathInContainer": "/root/data"}]
    assert plan.reversible is False
    assert any("prepaid" in w and "180 CNY" in w for w in plan.warnings)  # 2.5 CNY x 72 hours


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"cost_type": 5}, "cost_type"),
        ({"cost_type": 0}, "cost_type"),
        ({"cost_type": 4}, "needs cost_time"),
        ({"cost_type": 4, "cost_time": "1M"}, "does not match daily"),
        ({"cost_type": 2, "cost_time": "3D"}, "does not match monthly"),
        ({"cost_type": 3, "cost_time": "two weeks"}, "does not match weekly"),
        ({"cost_type": 1, "cost_time": "3D"}, "only for prepaid"),
        ({"cost_type": 4, "cost_time": "3D", "coupon_id": "c1"}, "pay-as-you-go"),
        ({"volume_size": 0}, "volume_size"),
        ({"display_name": ""}, "display_name"),
    ],
)
async def test_bad_create_input_is_refused_before_anything_is_sent(
    nl: Toolkit, api: respx.MockRouter, args: dict[str, Any], message: str
) -> None:
    full = {"display_name": "x", "image": IMAGE, "gpu_sku_id": "66", **args}
    with pytest.raises(InvalidInput, match=message):
        await nl.call("neolink_create_instance", full, confirmer=Approve())
    assert api.calls.call_count == 0


async def test_sku_sold_under_another_billing_type_is_refused_before_posting(
    nl: Toolkit, api: respx.MockRouter
) -> None:
    api.get("/regions").respond(json=fixture("regions.json"))
    api.get("/skus/computings").respond(json=skus_with_4090())
    route = api.post(INSTANCES)
    with pytest.raises(InvalidInput, match="sold pay-as-you-go, not daily"):
        await nl.call(
            "neolink_create_instance",
            {"display_name": "x", "image": IMAGE, "gpu_sku_id": "66", "cost_type": 4, "cost_time": "1D"},
            confirmer=Approve(),
        )
    with pytest.raises(InvalidInput, match="SKUs there: 2 \\(1x H20\\), 66"):
        await nl.call(
            "neolink_create_instance",
            {"display_name": "x", "image": IMAGE, "gpu_sku_id": "999"},
            confirmer=Approve(),
        )
    with pytest.raises(InvalidInput, match="unknown region 'mars'.*host-cluster"):
        await nl.call(
            "neolink_create_instance",
            {"display_name": "x", "image": IMAGE, "gpu_sku_id": "66", "region": "mars"},
            confirmer=Approve(),
        )
    assert not route.called


async def test_list_instances_reads_the_example_with_secrets_masked(
    nl: Toolkit, api: respx.MockRouter
) -> None:
    api.get("/regions").respond(json=fixture("regions.json"))
    route = api.get(INSTANCES).respond(json=fixture("list_instances_response.json"))
    result = await nl.call("list_resources", {"provider": "neolink"})
    request = route.calls.last.request
    # The documented unpaged request, and nothing more: its answer says no page follows.
    assert request.method == "GET" and request.url == f"{BASE}{INSTANCES}" and route.call_count == 1
    assert_auth(request)
    [resource] = result.items
    assert resource.resource_id == "instance-ccffxxxx"
    assert (resource.status, resource.raw_status) == ("running", "Running")
    d = resource.details
    assert d["ssh_address"] == "ssh -p30099 root@8d40c2e6-a0b0-45c2-9b40-a0de065104f5.gws.neolink-ai.com"
    assert d["ssh_password"] == "***"
    assert d["jupyter_url"].endswith("/jupyter?token=***")
    assert d["tensorboard_url"] == "http://8d40c2e6-a0b0-45c2-9b40-a0de065104f5.gw.neolink-ai.com/monitor"
    assert d["pods"][0]["ip"] == "172.31.213.79"
    dumped = result.model_dump_json()
    assert LIST_PASSWORD not in dumped and LIST_JUPYTER_TOKEN not in dumped


async def test_the_first_list_request_is_the_documented_unpaged_one(
    nl: Toolkit, api: respx.MockRouter
) -> None:
    """Whatever follows, the first request of a listing carries no paging parameter at all."""
    more = fixture("list_instances_response.json")
    more["hasNextPage"], more["totalCount"] = True, 5
    api.get("/regions").respond(json=fixture("regions.json"))
    route = api.get(INSTANCES).respond(json=more)
    await nl.call("list_resources", {"provider": "neolink"})
    first = route.calls[0].request
    assert first.url == f"{BASE}{INSTANCES}" and not first.url.params
    assert all("page" in c.request.url.params for c in route.calls[1:])


async def test_list_follows_has_next_page(nl: Toolkit, api: respx.MockRouter) -> None:
    first = fixture("list_instances_response.json")
    second = copy.deepcopy(first)
    first["hasNextPage"], first["totalCount"] = True, 2
    second["nodes"][0]["name"] = "instance-second"
    second["totalCount"] = 2

    def pages(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=second if request.url.params.get("page") == "2" else first)

    api.get("/regions").respond(json=fixture("regions.json"))
    route = api.get(INSTANCES).mock(side_effect=pages)
    result = await nl.call("list_resources", {"provider": "neolink"})
    assert [r.resource_id for r in result.items] == ["instance-ccffxxxx", "instance-second"]
    assert [dict(c.request.url.params) for c in route.calls] == [
        {},  # the documented unpaged request first; paging only once it says there is more
        {"page": "1", "pageSize": "100"},
        {"page": "2", "pageSize": "100"},
    ]
    assert result.providers[0].status == "ok"


async def test_list_follows_a_smaller_page_size_and_reads_the_rest_at_once(
    nl: Toolkit, api: respx.MockRouter
) -> None:
    """A provider that serves 10 per page whatever pageSize says: pages 2 and 3 are asked together."""
    template = fixture("list_instances_response.json")["nodes"][0]
    names = [f"instance-{i:04d}" for i in range(25)]
    in_flight = peak = 0

    async def pages(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        page = int(request.url.params.get("page", "1"))
        chunk = names[(page - 1) * 10 : page * 10]
        body = {
            "hasNextPage": page * 10 < 25,
            "nodes": [{**template, "name": n} for n in chunk],
            "totalCount": 25,
        }
        return httpx.Response(200, json=body)

    api.get("/regions").respond(json=fixture("regions.json"))
    route = api.get(INSTANCES).mock(side_effect=pages)
    result = await nl.call("list_resources", {"provider": "neolink"})
    assert [r.resource_id for r in result.items] == names
    assert [s.status for s in result.providers] == ["ok"]
    assert dict(route.calls[0].request.url.params) == {}
    assert sorted(c.request.url.params.get("page", "-") for c in route.calls) == ["-", "1", "2", "3"]
    assert peak == 2


async def test_list_stops_when_a_page_repeats(nl: Toolkit, api: respx.MockRouter) -> None:
    """A server that ignores the page parameter must not make the adapter loop forever."""
    body = fixture("list_instances_response.json")
    body["hasNextPage"] = True
    api.get("/regions").respond(json=fixture("regions.json"))
    route = api.get(INSTANCES).respond(json=body)
    result = await nl.call("list_resources", {"provider": "neolink"})
    # The unpaged list, page 1 (which may repeat it) and page 2, which repeats: then it stops.
    assert len(result.items) == 1 and route.call_count == 3
    [status] = result.providers
    assert status.status == "partial" and "ignore `page`" in (status.message or "")


async def test_get_reads_the_example_and_reveals_secrets_only_when_asked(
    nl: Toolkit, api: respx.MockRouter
) -> None:
    route = mock_get_instance(api)
    masked = await nl.call("get_resource", {"provider": "neolink", "resource_id": "instance-4ca9xxxx"})
    request = route.calls.last.request
    assert request.method == "GET" and request.url == f"{BASE}{INSTANCES}/instance-4ca9xxxx"
    assert_auth(request)
    assert isinstance(masked, Resource)
    assert (masked.status, masked.gpu_name, masked.gpu_count, masked.name) == ("running", "4090", 1, "test1")
    assert masked.created_at == "2024-09-02T22:15:13+08:00"
    assert masked.details["ssh_address"].startswith("ssh -p30379 root@a7d2cbab")
    assert masked.details["ssh_password"] == "***"
    assert masked.url == "http://a7d2cbab-591d-4482-95ea-2df994ed1b22.gw.neolink-ai.com/jupyter?token=***"
    assert GET_PASSWORD not in masked.model_dump_json()
    assert GET_JUPYTER_TOKEN not in masked.model_dump_json()

    shown = await nl.call(
        "get_resource", {"provider": "neolink", "resource_id": "instance-4ca9xxxx", "reveal_secrets": True}
    )
    assert shown.details["ssh_password"] == GET_PASSWORD
    assert shown.url.endswith(f"token={GET_JUPYTER_TOKEN}")


async def test_stop_posts_power_off_with_the_documented_body(nl: Toolkit, api: respx.MockRouter) -> None:
    mock_get_instance(api)
    route = api.post(f"{INSTANCES}/instance-4ca9xxxx/power_off").respond(
        json=fixture("power_off_response.json")
    )
    result = await nl.call(
        "stop_resource",
        {
            "provider": "neolink",
            "resource_id": "instance-4ca9xxxx",
            "grace_period_seconds": 10,
            "snapshot_image_name": "image1",
            "snapshot_tag": "v1.1.0",
        },
        confirmer=Approve(),
    )
    request = route.calls.last.request
    assert request.method == "POST"
    assert request.url == f"{BASE}{INSTANCES}/instance-4ca9xxxx/power_off"
    assert_auth(request)
    assert json.loads(request.content) == fixture("power_off_request.json")
    assert result.outcome == "done"
    assert result.detail["answer"] == "ok"
    assert result.detail["snapshot"] == {"image_name": "image1", "tag": "v1.1.0"}
    assert "image1:v1.1.0" in result.plan.action and "10s" in result.plan.action


async def test_plain_stop_asks_for_no_snapshot(nl: Toolkit, api: respx.MockRouter) -> None:
    mock_get_instance(api)
    route = api.post(f"{INSTANCES}/instance-4ca9xxxx/power_off").respond(json="ok")
    await nl.call(
        "stop_resource", {"provider": "neolink", "resource_id": "instance-4ca9xxxx"}, confirmer=Approve()
    )
    assert json.loads(route.calls.last.request.content) == {"needSnapshot": False}


async def test_snapshot_tag_without_image_name_is_refused(nl: Toolkit, api: respx.MockRouter) -> None:
    mock_get_instance(api)
    with pytest.raises(InvalidInput, match="snapshot_tag needs snapshot_image_name"):
        await nl.call(
            "stop_resource",
            {"provider": "neolink", "resource_id": "instance-4ca9xxxx", "snapshot_tag": "v1"},
            confirmer=Approve(),
        )
    assert all(c.request.method == "GET" for c in api.calls)


async def test_start_posts_power_on_without_a_body(nl: Toolkit, api: respx.MockRouter) -> None:
    mock_get_instance(api, status="Shutdown")
    api.get("/skus/computings").respond(json=skus_with_4090())
    route = api.post(f"{INSTANCES}/instance-4ca9xxxx/power_on").respond(json="ok")
    result = await nl.call(
        "start_resource", {"provider": "neolink", "resource_id": "instance-4ca9xxxx"}, confirmer=Approve()
    )
    request = route.calls.last.request
    assert request.method == "POST"
    assert request.url == f"{BASE}{INSTANCES}/instance-4ca9xxxx/power_on"
    assert_auth(request)
    assert request.content == b""
    assert result.detail["answer"] == "ok"
    assert result.plan.usd_per_hour == pytest.approx(0.35)  # SKU 66 at 2.5 CNY/hour
    assert result.plan.gpus == 1 and "pay-as-you-go" in result.plan.action


class Asked(Approve):
    """Says yes, and keeps what it was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[Plan] = []

    async def confirm(self, plan: Plan) -> bool:
        self.asked.append(plan)
        return True


@pytest.mark.parametrize(
    ("operation", "status", "said"),
    [
        ("start_resource", "Running", "is running: start_resource starts a stopped one"),
        ("start_resource", "Shutting down", "is pending (Shutting down)"),
        ("stop_resource", "Shutdown", "is stopped (Shutdown): nothing to stop"),
    ],
)
async def test_a_start_of_a_running_or_a_stop_of_a_stopped_instance_is_refused_before_asking(
    nl: Toolkit, api: respx.MockRouter, operation: str, status: str, said: str
) -> None:
    mock_get_instance(api, status=status)
    power = api.post(url__regex=r".*/power_(on|off)$").respond(json="ok")
    asked = Asked()
    with pytest.raises(InvalidInput, match=re.escape(said)):
        await nl.call(operation, {"provider": "neolink", "resource_id": "instance-4ca9xxxx"}, confirmer=asked)
    assert not power.called and asked.asked == []
    refused = await nl.call("history", {"outcome": "refused"})
    assert [e.operation for e in refused.items] == [operation]


async def test_delete_sends_the_name_as_a_query_parameter(nl: Toolkit, api: respx.MockRouter) -> None:
    mock_get_instance(api)
    route = api.delete(INSTANCES).respond(json=fixture("delete_instance_response.json"))
    result = await nl.call(
        "delete_resource", {"provider": "neolink", "resource_id": "instance-4ca9xxxx"}, confirmer=Approve()
    )
    request = route.calls.last.request
    assert request.method == "DELETE"
    assert request.url == f"{BASE}{INSTANCES}?name=instance-4ca9xxxx"
    assert_auth(request)
    assert request.content == b""
    assert result.detail["answer"] == "ok"
    assert result.plan.reversible is False
    assert "?name=instance-4ca9xxxx" in result.plan.message()


async def test_update_is_unsupported_and_names_who_can(nl: Toolkit, api: respx.MockRouter) -> None:
    with pytest.raises(Unsupported, match="NeoLink AI does not support 'update'") as info:
        await nl.call("update_resource", {"provider": "neolink", "resource_id": "x", "replicas": 2})
    assert "Nebius" in str(info.value)
    assert api.calls.call_count == 0


# ---- error mapping ---------------------------------------------------------------------------
async def test_401_is_an_auth_error_with_the_provider_message(nl: Toolkit, api: respx.MockRouter) -> None:
    api.get("/regions").respond(401, json={"code": 401, "msg": "token expired"})
    with pytest.raises(AuthError, match="token expired") as info:
        await nl.call("get_resource", {"provider": "neolink", "resource_id": "instance-x"})
    assert TOKEN not in str(info.value)


async def test_an_instance_in_no_cluster_is_not_found(nl: Toolkit, api: respx.MockRouter) -> None:
    regions = fixture("regions.json")
    regions.append({**regions[0], "id": "other", "clusterName": "c2"})
    api.get("/regions").respond(json=regions)
    first = api.get(f"{INSTANCES}/instance-x").respond(404, json={"code": 404, "msg": "not found"})
    second = api.get("/clusters/c2/instances/instance-x").respond(404, json={"code": 404, "msg": "not found"})
    with pytest.raises(NotFound, match="no instance 'instance-x' in any NeoLink cluster"):
        await nl.call("get_resource", {"provider": "neolink", "resource_id": "instance-x"})
    assert first.called and second.called


async def test_an_error_code_under_http_200_is_rejected(nl: Toolkit, api: respx.MockRouter) -> None:
    api.get("/regions").respond(json={"code": 10003, "msg": "namespace does not match token"})
    with pytest.raises(ProviderRejected, match="namespace does not match token \\(code 10003\\)"):
        await nl.call("get_resource", {"provider": "neolink", "resource_id": "instance-x"})


async def test_5xx_and_non_json_are_typed(nl: Toolkit, api: respx.MockRouter) -> None:
    api.get("/regions").respond(500, json={"code": 500, "msg": "internal error"})
    with pytest.raises(ProviderUnavailable, match="internal error"):
        await nl.call("get_resource", {"provider": "neolink", "resource_id": "instance-x"})
    api.get("/regions").respond(200, text="<html>gateway</html>")
    with pytest.raises(MalformedResponse, match="not JSON"):
        await nl.call("get_resource", {"provider": "neolink", "resource_id": "instance-x"})
    api.get("/regions").respond(200, json={"unexpected": True})
    with pytest.raises(
        MalformedResponse, match=r"GET /regions answered unreadable JSON: expected a list, got dict\."
    ):
        await nl.call("get_resource", {"provider": "neolink", "resource_id": "instance-x"})


async def test_a_refused_create_is_journaled_as_failed(nl: Toolkit, api: respx.MockRouter) -> None:
    api.get("/regions").respond(json=fixture("regions.json"))
    api.get("/skus/computings").respond(json=skus_with_4090())
    api.post(INSTANCES).respond(400, json={"code": 400, "msg": "insufficient GPU resources"})
    with pytest.raises(ProviderRejected, match="insufficient GPU resources"):
        await nl.call(
            "neolink_create_instance",
            {"display_name": "x", "image": IMAGE, "gpu_sku_id": "66"},
            confirmer=Approve(),
        )
    history = await nl.call("history", {"provider": "neolink"})
    assert [e.outcome for e in history.items] == ["failed"]
    assert "insufficient GPU resources" in (history.items[0].error or "")


async def test_without_namespace_the_provider_is_not_configured(api: respx.MockRouter) -> None:
    toolkit = Toolkit(Settings(neolink_api_token=TOKEN))
    try:
        with pytest.raises(NotConfigured, match="NEOLINK_NAMESPACE"):
            await toolkit.call("get_resource", {"provider": "neolink", "resource_id": "instance-x"})
    finally:
        toolkit.close()
    assert api.calls.call_count == 0
