"""NetMind end to end through `tk.call` against the sandbox: both products' lifecycles, the gate's
dry runs and refusals, what NetMind cannot do, and that no secret leaks into any output."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, SecretStr

from gpu_tools import errors
from gpu_tools.gate import Approve, Refuse
from gpu_tools.models import MutationResult, Resource
from gpu_tools.sandbox import SandboxServer
from gpu_tools.toolkit import Toolkit
from tests.conftest import mutating_requests, sandbox_settings

pytestmark = pytest.mark.anyio

H100_FLAVOR = "e5d2b7a96c3f41d08a7e9c2b4d1f6a38"
H100_NODE = "sbx-us-h100-01"
OFFICIAL_PYTORCH = 1


async def make_auth(tk: Toolkit, value: str = "sandbox-ssh-pass") -> int:
    result = await tk.call("netmind_create_auth", {"value": value}, confirmer=Approve())
    assert isinstance(result, MutationResult) and result.outcome == "done"
    return result.detail["auth_id"]


async def make_container(tk: Toolkit, auth_id: int, gpu: int = 2) -> Resource:
    args = {
        "name": "train-1",
        "auth_id": auth_id,
        "gpu": gpu,
        "node_name": H100_NODE,
        "image_template_id": OFFICIAL_PYTORCH,
    }
    result = await tk.call("netmind_create_container", args, confirmer=Approve())
    assert result.resource is not None
    return result.resource


async def make_endpoint(tk: Toolkit, instances: int = 1) -> Resource:
    args = {
        "name": "flask-demo",
        "description": "sandbox test",
        "flavor_id": H100_FLAVOR,
        "target_instance_number": instances,
        "image_url": "python:3.10-slim",
        "command": "python -m http.server 8080",
        "port": 8080,
        "gpu_num": 1,
    }
    result = await tk.call("netmind_create_endpoint", args, confirmer=Approve())
    assert result.resource is not None
    return result.resource


async def raw_status_becomes(tk: Toolkit, resource_id: str, raw: str, timeout: float = 30.0) -> Resource:
    """Poll until the provider's raw status is `raw` (container integers have no normalized name)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        r = await tk.call("get_resource", {"provider": "netmind", "resource_id": resource_id})
        if r.raw_status == raw or asyncio.get_running_loop().time() > deadline:
            assert r.raw_status == raw, f"{resource_id} stayed {r.raw_status}"
            return r
        await asyncio.sleep(0.05)


def ref(resource: Resource | str) -> dict[str, str]:
    rid = resource if isinstance(resource, str) else resource.resource_id
    return {"provider": "netmind", "resource_id": rid}


async def test_offers_include_flavors_and_machines_with_prices(tk: Toolkit) -> None:
    result = await tk.call("list_offers", {"provider": "netmind", "gpu": "H100"})
    kinds = {o.kind: o for o in result.items}
    assert set(kinds) == {"endpoint", "container"}
    assert kinds["endpoint"].offer_id == H100_FLAVOR and kinds["endpoint"].usd_per_gpu_hour == 2.49
    assert kinds["container"].offer_id == H100_NODE and kinds["container"].usd_per_gpu_hour == 2.39
    assert kinds["container"].gpu_count == 8 and kinds["container"].gpu_memory_gb == 80
    assert result.sandbox is True


async def test_machine_filters_reach_the_sandbox(tk: Toolkit, sandbox: SandboxServer) -> None:
    offers = (await tk.call("netmind_list_machines", {"region": "de"})).items
    assert [o.offer_id for o in offers] == ["sbx-de-a100-01"]
    cny = (
        await tk.call("netmind_list_machines", {"currency": "CNY", "gpu_names": "NVIDIA_H100_SXM5_80GB"})
    ).items
    [h100] = cny
    assert (
        h100.currency == "CNY" and h100.price_estimated and h100.price == pytest.approx(2.39 * 7.2, rel=1e-3)
    )
    cheap = (await tk.call("netmind_list_machines", {"max_price": 1})).items
    assert {o.offer_id for o in cheap} == {"sbx-hk-4090-01", "sbx-jp-3090-01"}
    [query] = [r["query"] for r in sandbox.sandbox.requests if r["query"].startswith("currency")]
    assert query == "currency=CNY&gpu_names=NVIDIA_H100_SXM5_80GB"


async def test_endpoint_and_container_full_lifecycle(tk: Toolkit, sandbox: SandboxServer) -> None:
    auth_id = await make_auth(tk)
    container = await make_container(tk, auth_id)
    endpoint = await make_endpoint(tk)
    assert endpoint.resource_id.startswith("endpoint:") and container.resource_id.startswith("container:")
    assert (endpoint.status, endpoint.raw_status, endpoint.usd_per_hour) == ("pending", "initializing", 2.49)
    assert (container.raw_status, container.usd_per_hour, container.region) == (
        "0",
        pytest.approx(4.78),
        "US",
    )

    listed = await tk.call("list_resources", {"provider": "netmind"})
    assert {r.resource_id for r in listed.items} == {endpoint.resource_id, container.resource_id}

    # The endpoint becomes available; scaling sends it back through initializing.
    ready = await tk.call("wait_for_resource", {**ref(endpoint), "poll_seconds": 0.05, "timeout_seconds": 10})
    assert (ready.status, ready.raw_status) == ("running", "available")
    scaled = await tk.call("update_resource", {**ref(endpoint), "replicas": 2}, confirmer=Approve())
    assert scaled.plan.usd_per_hour == pytest.approx(4.98)
    assert (scaled.resource.replicas, scaled.resource.raw_status) == (2, "initializing")
    ready = await tk.call("wait_for_resource", {**ref(endpoint), "poll_seconds": 0.05, "timeout_seconds": 10})
    assert ready.replicas == 2 and ready.status == "running"

    # The container runs, stops and restarts (sandbox integers: 0 creating, 1 running, 2 stopping, 3 stopped).
    running = await raw_status_becomes(tk, container.resource_id, "1")
    assert running.status == "unknown" and running.details["ssh"].startswith("ssh -p ")
    stopped = await tk.call("stop_resource", ref(container), confirmer=Approve())
    assert stopped.resource.raw_status == "2"
    await raw_status_becomes(tk, container.resource_id, "3")
    restarted = await tk.call("start_resource", ref(container), confirmer=Approve())
    assert restarted.resource.raw_status == "0" and restarted.plan.usd_per_hour == pytest.approx(4.78)
    await raw_status_becomes(tk, container.resource_id, "1")

    for resource in (endpoint, container):
        deleted = await tk.call("delete_resource", ref(resource), confirmer=Approve())
        assert deleted.outcome == "done"
    gone = await tk.call("wait_for_resource", {**ref(endpoint), "until": "deleted", "poll_seconds": 0.05})
    assert gone.raw_status == "gone"
    with pytest.raises(errors.NotFound):
        await tk.call("get_resource", ref(container))
    assert (await tk.call("list_resources", {"provider": "netmind"})).items == []

    sent = [(r["method"], r["path"].split("/netmind", 1)[1]) for r in mutating_requests(sandbox)]
    eid, cid = endpoint.resource_id.split(":")[1], container.resource_id.split(":")[1]
    assert sent == [
        ("POST", "/v1/rentgpu/auths/"),
        ("POST", "/v1/rentgpu/containers/"),
        ("POST", "/v1/inference-service"),
        ("PUT", f"/v1/inference-service/{eid}"),
        ("POST", f"/v1/rentgpu/containers/{cid}/stop"),
        ("POST", f"/v1/rentgpu/containers/{cid}/restart"),
        ("DELETE", f"/v1/inference-service/{eid}"),
        ("DELETE", f"/v1/rentgpu/containers/{cid}"),
    ]
    outcomes = {(e.operation, e.outcome) for e in tk.journal.entries(provider="netmind")[0]}
    assert ("netmind_create_endpoint", "ok") in outcomes and ("delete_resource", "ok") in outcomes


async def test_a_rented_gpu_leaves_the_machine_listing_until_released(tk: Toolkit) -> None:
    auth_id = await make_auth(tk)
    container = await make_container(tk, auth_id, gpu=8)
    nodes = {o.offer_id for o in (await tk.call("netmind_list_machines", {})).items}
    assert H100_NODE not in nodes
    await tk.call("delete_resource", ref(container), confirmer=Approve())
    nodes = {o.offer_id for o in (await tk.call("netmind_list_machines", {})).items}
    assert H100_NODE in nodes


async def test_dry_runs_send_nothing(tk: Toolkit, sandbox: SandboxServer) -> None:
    auth_id = await make_auth(tk)
    container = await make_container(tk, auth_id)
    endpoint = await make_endpoint(tk)
    sandbox.sandbox.requests.clear()
    calls: list[tuple[str, dict[str, Any]]] = [
        ("netmind_create_auth", {"value": "another-password"}),
        ("netmind_create_image", {"name": "n", "image_name": "a/b", "image_tag": "1", "image_label": "x"}),
        (
            "netmind_create_container",
            {"name": "c", "auth_id": auth_id, "node_name": H100_NODE, "image_template_id": OFFICIAL_PYTORCH},
        ),
        (
            "netmind_create_endpoint",
            {"name": "e", "flavor_id": H100_FLAVOR, "image_url": "python:3.10-slim", "port": 8080},
        ),
        ("update_resource", {**ref(endpoint), "replicas": 3}),
        ("stop_resource", ref(container)),
        ("start_resource", ref(container)),
        ("delete_resource", ref(endpoint)),
        ("delete_resource", ref(container)),
    ]
    for name, args in calls:
        result = await tk.call(name, {**args, "dry_run": True}, confirmer=Approve())
        assert result.outcome == "dry_run" and result.plan.provider == "netmind", name
    assert mutating_requests(sandbox) == []
    assert tk.journal.entries(outcome="unknown")[1] == 0


async def test_refused_confirmation_sends_nothing_and_is_journaled(
    tk: Toolkit, sandbox: SandboxServer
) -> None:
    auth_id = await make_auth(tk)
    sandbox.sandbox.requests.clear()
    args = {"name": "c", "auth_id": auth_id, "node_name": H100_NODE, "image_template_id": OFFICIAL_PYTORCH}
    with pytest.raises(errors.ConfirmationRefused, match="Nothing was sent"):
        await tk.call("netmind_create_container", args, confirmer=Refuse())
    assert mutating_requests(sandbox) == []
    [row] = tk.journal.entries(outcome="refused")[0]
    assert (row.operation, row.path, row.usd_per_hour) == (
        "netmind_create_container",
        "/v1/rentgpu/containers/",
        pytest.approx(2.39),
    )


async def test_stopping_an_endpoint_is_unsupported_with_a_way_out(
    tk: Toolkit, sandbox: SandboxServer
) -> None:
    endpoint = await make_endpoint(tk)
    sandbox.sandbox.requests.clear()
    with pytest.raises(errors.Unsupported) as info:
        await tk.call("stop_resource", ref(endpoint), confirmer=Approve())
    message = str(info.value)
    assert "stopping a dedicated endpoint" in message and "update_resource" in message
    assert "delete_resource" in message and mutating_requests(sandbox) == []
    with pytest.raises(errors.Unsupported, match="NetMind"):
        await tk.call("update_resource", {**ref("container:1"), "replicas": 2}, confirmer=Approve())


async def test_a_provider_refusal_is_a_failed_journal_row(tk: Toolkit) -> None:
    # The H100 flavor has 4 instances free; asking for 6 passes the plan (with a warning) and the
    # sandbox refuses it, as NetMind would.
    with pytest.raises(errors.ProviderRejected, match="not enough") as info:
        await make_endpoint(tk, instances=6)
    assert info.value.status == 400
    [row] = tk.journal.entries(provider="netmind")[0]
    assert row.outcome == "failed" and "not enough" in (row.error or "")


async def test_pages_of_containers_auths_and_images(tk: Toolkit) -> None:
    auth_ids = [await make_auth(tk, f"password-{n:04d}") for n in range(3)]
    first = await tk.call("netmind_list_auths", {"limit": 2})
    assert [a.auth_id for a in first.items] == auth_ids[:2] and first.next_marker == auth_ids[1]
    rest = await tk.call("netmind_list_auths", {"limit": 2, "marker": first.next_marker})
    assert [a.auth_id for a in rest.items] == auth_ids[2:] and rest.next_marker is None
    assert all(a.value == "***" for a in first.items + rest.items)

    made = [await make_container(tk, auth_ids[0], gpu=1) for _ in range(3)]
    page = await tk.call("netmind_list_containers", {"limit": 2})
    assert [r.resource_id for r in page.items] == [m.resource_id for m in made[:2]]
    page = await tk.call("netmind_list_containers", {"limit": 2, "marker": page.next_marker})
    assert [r.resource_id for r in page.items] == [made[2].resource_id]

    official = await tk.call("netmind_list_images", {"limit": 2})
    assert [i.image_id for i in official.items] == [1, 2] and official.next_marker == "2"
    created = await tk.call(
        "netmind_create_image",
        {"name": "mine", "image_name": "me/app", "image_tag": "v1", "image_label": "custom"},
        confirmer=Approve(),
    )
    custom = await tk.call("netmind_list_images", {"image_type": created.detail["image_type"]})
    assert [i.image_id for i in custom.items] == [created.detail["image_id"]]
    templates = await tk.call("list_templates", {"provider": "netmind"})
    assert {t.details["image_template_id"] for t in templates.items} == {1, 2, 3}


async def test_sandbox_enforces_auth_and_answers_fastapi_422(sandbox: SandboxServer) -> None:
    base = f"{sandbox.url}/netmind"
    denied = httpx.get(f"{base}/v1/rentgpu/machines")
    assert denied.status_code == 401 and denied.json() == {"detail": "Not authenticated"}
    headers = {"Authorization": f"Bearer {sandbox.sandbox.api_key}"}
    bad = httpx.post(f"{base}/v1/rentgpu/auths/", json={"value": "short"}, headers=headers)
    assert bad.status_code == 422
    assert bad.json() == {
        "detail": [
            {
                "loc": ["body", "value"],
                "msg": "String should have at least 8 characters",
                "type": "string_too_short",
            }
        ]
    }
    missing = httpx.post(
        f"{base}/v1/inference-service", json={"name": "x", "payment_type": "usd"}, headers=headers
    )
    assert missing.json()["detail"][0]["loc"] == ["body", "resource_metadata"]
    bad_id = httpx.get(f"{base}/v1/rentgpu/containers/abc", headers=headers)
    assert bad_id.status_code == 422 and bad_id.json()["detail"][0]["loc"] == ["path", "container_id"]
    bad_query = httpx.get(f"{base}/v1/rentgpu/machines", params={"gpu": "many"}, headers=headers)
    assert bad_query.status_code == 422 and bad_query.json()["detail"][0]["type"] == "int_parsing"


# ---- secrets ---------------------------------------------------------------------------------
PLANTED_KEY = "nm-planted-api-key-7Q2xZ"
PLANTED_SSH = "ssh-pw-planted-K9v3"
PLANTED_DOCKER = "docker-pw-planted-W4m8"


@pytest.fixture
def planted(sandbox: SandboxServer) -> Iterator[Toolkit]:
    """A toolkit whose NetMind key is a known string the sandbox expects."""
    settings = sandbox_settings(sandbox).model_copy(update={"netmind_api_key": SecretStr(PLANTED_KEY)})
    previous = sandbox.sandbox.api_key
    sandbox.sandbox.api_key = PLANTED_KEY
    toolkit = Toolkit(settings)
    try:
        yield toolkit
    finally:
        sandbox.sandbox.api_key = previous
        toolkit.close()


async def test_no_secret_reaches_results_journal_or_logs(
    planted: Toolkit, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tk = planted
    outputs: list[BaseModel] = []

    async def call(name: str, args: dict[str, Any]) -> Any:
        result = await tk.call(name, args, confirmer=Approve())
        outputs.append(result)
        return result

    auth = await call("netmind_create_auth", {"value": PLANTED_SSH})
    auth_id = auth.detail["auth_id"]
    await call("netmind_create_auth", {"value": PLANTED_SSH, "dry_run": True})
    await call("netmind_get_auth", {"auth_id": auth_id})
    await call("netmind_list_auths", {})
    image = await call(
        "netmind_create_image",
        {
            "name": "private",
            "image_name": "me/private",
            "image_tag": "v1",
            "image_label": "custom",
            "docker_username": "me",
            "docker_passwd": PLANTED_DOCKER,
            "docker_registry": "https://registry.example.com/v2/",
        },
    )
    image_id = image.detail["image_id"]
    await call("netmind_get_image", {"image_id": image_id})
    await call("netmind_list_images", {"image_type": image.detail["image_type"]})
    await call("list_templates", {"provider": "netmind"})
    container = await call(
        "netmind_create_container",
        {"name": "c", "auth_id": auth_id, "node_name": H100_NODE, "image_template_id": image_id},
    )
    await call("get_resource", ref(container.resource))
    await call("list_resources", {"provider": "netmind"})
    await call("netmind_list_containers", {})
    await call("list_offers", {"provider": "netmind"})
    await call("stop_resource", ref(container.resource))
    await call("delete_resource", ref(container.resource))
    await call("history", {"limit": 100})
    with pytest.raises(errors.NotFound) as missing:
        await tk.call("netmind_get_auth", {"auth_id": 999})
    with pytest.raises(errors.InvalidInput) as short:
        await tk.call("netmind_create_auth", {"value": PLANTED_SSH + "-far-too-long-for-netmind"})

    texts = [o.model_dump_json() for o in outputs]
    texts += [e.model_dump_json() for e in tk.journal.entries(limit=1000)[0]]
    texts += [str(missing.value), str(short.value), caplog.text]
    for secret in (PLANTED_KEY, PLANTED_SSH, PLANTED_DOCKER):
        leaks = [t[:200] for t in texts if secret in t]
        assert not leaks, f"{secret} leaked: {leaks}"
    assert any("***" in t for t in texts)

    # Control: the secrets were really there to leak, and an explicit reveal shows them.
    revealed = await tk.call("netmind_get_auth", {"auth_id": auth_id, "reveal_secrets": True})
    assert revealed.value == PLANTED_SSH
    revealed_image = await tk.call("netmind_get_image", {"image_id": image_id, "reveal_secrets": True})
    assert revealed_image.docker_passwd == PLANTED_DOCKER
