"""Sesterce end to end through `Toolkit.call` against the live sandbox: registries, an instance
autoscaling in two regions from plan to deletion, and the guarantees around it (price preview in
the dry run, nothing sent without a yes, the registry password never shown or journaled)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import SecretStr

from gpu_tools.errors import AuthError, ConfirmationRefused, InvalidInput, PolicyRefused
from gpu_tools.gate import Approve, Refuse
from gpu_tools.models import MutationResult, Resource
from gpu_tools.sandbox import SandboxServer
from gpu_tools.sandbox.sesterce import H100_1, HOURS_PER_MONTH, L40S_1, PRICES
from gpu_tools.toolkit import Toolkit
from tests.conftest import mutating_requests, sandbox_settings

pytestmark = pytest.mark.anyio

PASSWORD = "correct-horse-battery-staple"
TWO_REGIONS = [
    {"region_id": 18, "min": 1, "max": 2, "cpu_threshold": 80, "gpu_utilization_threshold": 85},
    {"region_id": 78, "min": 1, "max": 3, "http_rate": 12, "http_window": 20},
]


def requests_to(sandbox: SandboxServer, method: str, suffix: str) -> list[dict[str, Any]]:
    return [
        r
        for r in sandbox.sandbox.requests
        if r["provider"] == "sesterce" and r["method"] == method and r["path"].endswith(suffix)
    ]


async def wait(tk: Toolkit, resource_id: str, until: str = "running") -> Resource:
    result = await tk.call(
        "wait_for_resource",
        {
            "provider": "sesterce",
            "resource_id": resource_id,
            "until": until,
            "timeout_seconds": 20,
            "poll_seconds": 0.05,
        },
    )
    assert isinstance(result, Resource)
    return result


async def test_instance_lifecycle_with_two_autoscaling_regions(tk: Toolkit, sandbox: SandboxServer) -> None:
    outputs: list[str] = []

    registry = await tk.call(
        "sesterce_create_registry",
        {"name": "private", "url": "docker.io/acme/llm:1.2", "username": "acme", "password": PASSWORD},
        confirmer=Approve(),
    )
    outputs.append(registry.model_dump_json())
    registry_id = registry.detail["registry_id"]
    listed = await tk.call("sesterce_list_registries", {})
    outputs.append(listed.model_dump_json())
    assert [r.registry_id for r in listed.items] == [registry_id]

    args = {
        "name": "chat-prod",
        "model_id": "llama-3.1-8b-instruct",
        "hardware_id": H100_1,
        "registry_id": registry_id,
        "regions": TWO_REGIONS,
        "envs": {"HF_TOKEN": "hf_secret_value"},
    }
    sandbox.sandbox.requests.clear()
    preview = await tk.call("sesterce_create_endpoint", {**args, "dry_run": True})
    outputs.append(preview.model_dump_json())
    assert isinstance(preview, MutationResult) and preview.outcome == "dry_run"
    assert mutating_requests(sandbox) == []
    assert requests_to(sandbox, "POST", "/pricing")  # the preview was asked for, as a read
    hourly_max = round(PRICES[H100_1] * 5, 2)
    hourly_min = round(PRICES[H100_1] * 2, 2)
    assert (preview.plan.usd_per_hour, preview.plan.usd_per_hour_max) == (hourly_min, hourly_max)
    monthly = f"{hourly_max * HOURS_PER_MONTH:.2f} USD/month"
    assert any(f"{hourly_max:.2f} USD/hour, {monthly}" in w for w in preview.plan.warnings)
    assert preview.plan.gpus == 5
    assert preview.plan.body["envs"] == {"HF_TOKEN": "***"}
    sandbox.sandbox.requests.clear()

    created = await tk.call("sesterce_create_endpoint", args, confirmer=Approve())
    outputs.append(created.model_dump_json())
    [sent] = requests_to(sandbox, "POST", "/ai-inference/instances")
    assert sent["headers"]["x-api-key"] == "***"  # the log masks it; the sandbox checked it
    assert sent["body"]["envs"] == {"HF_TOKEN": "hf_secret_value"}
    assert [c["regionId"] for c in sent["body"]["autoScalingConfigurations"]] == [18, 78]
    assert created.resource is not None and created.resource.status == "pending"
    resource_id = created.resource.resource_id

    running = await wait(tk, resource_id)
    outputs.append(running.model_dump_json())
    assert running.raw_status == "ACTIVE"
    assert (running.region, running.replicas, running.min_replicas, running.max_replicas) == (
        "18,78",
        2,
        2,
        5,
    )
    assert [c["deployStatus"] for c in running.details["containers"]] == [
        {"total": 1, "ready": 1},
        {"total": 1, "ready": 1},
    ]
    assert running.details["envs"] == {"HF_TOKEN": "***"}

    scaled = await tk.call(
        "update_resource",
        {"provider": "sesterce", "resource_id": resource_id, "min_replicas": 2, "max_replicas": 4},
        confirmer=Approve(),
    )
    outputs.append(scaled.model_dump_json())
    [patch] = requests_to(sandbox, "PATCH", resource_id)
    assert [
        (c["regionId"], c["scale"]["min"], c["scale"]["max"])
        for c in patch["body"]["autoScalingConfigurations"]
    ] == [
        (18, 2, 4),
        (78, 2, 4),
    ]
    assert patch["body"]["autoScalingConfigurations"][1]["scale"]["triggers"] == {
        "http": {"rate": 12, "window": 20}
    }
    assert scaled.plan.usd_per_hour_max == round(PRICES[H100_1] * 8, 2)
    assert scaled.resource is not None and scaled.resource.raw_status == "DEPLOYING"
    rescaled = await wait(tk, resource_id)
    assert (rescaled.replicas, rescaled.min_replicas, rescaled.max_replicas) == (4, 4, 8)

    stopped = await tk.call(
        "stop_resource", {"provider": "sesterce", "resource_id": resource_id}, confirmer=Approve()
    )
    outputs.append(stopped.model_dump_json())
    assert stopped.resource is not None
    assert (stopped.resource.status, stopped.resource.raw_status, stopped.resource.replicas) == (
        "stopped",
        "DISABLED",
        0,
    )

    started = await tk.call(
        "start_resource", {"provider": "sesterce", "resource_id": resource_id}, confirmer=Approve()
    )
    outputs.append(started.model_dump_json())
    assert started.resource is not None and started.resource.raw_status == "PENDING"
    assert started.plan.usd_per_hour_max == round(PRICES[H100_1] * 8, 2)
    assert (await wait(tk, resource_id)).raw_status == "ACTIVE"

    deleted = await tk.call(
        "delete_resource", {"provider": "sesterce", "resource_id": resource_id}, confirmer=Approve()
    )
    outputs.append(deleted.model_dump_json())
    assert deleted.detail == {"deleted": resource_id}
    gone = await wait(tk, resource_id, until="deleted")
    assert gone.raw_status == "gone"
    assert (await tk.call("list_resources", {"provider": "sesterce"})).items == []

    dropped = await tk.call("sesterce_delete_registry", {"registry_id": registry_id}, confirmer=Approve())
    outputs.append(dropped.model_dump_json())
    history = await tk.call("history", {"provider": "sesterce"})
    outputs.append(history.model_dump_json())
    assert [e.operation for e in history.items] == [
        "sesterce_delete_registry",
        "delete_resource",
        "start_resource",
        "stop_resource",
        "update_resource",
        "sesterce_create_endpoint",
        "sesterce_create_registry",
    ]
    assert all(e.outcome == "ok" for e in history.items)
    rows = json.dumps([tk.journal.result_of(e.id) for e in history.items])
    for text in [*outputs, rows]:
        assert PASSWORD not in text
        assert "hf_secret_value" not in text


async def test_registry_update_sends_the_new_password_but_never_shows_it(
    tk: Toolkit, sandbox: SandboxServer
) -> None:
    created = await tk.call(
        "sesterce_create_registry",
        {"name": "r", "url": "docker.io/acme/a:1", "username": "acme", "password": "first-password"},
        confirmer=Approve(),
    )
    registry_id = created.detail["registry_id"]

    updated = await tk.call(
        "sesterce_update_registry",
        {"registry_id": registry_id, "url": "docker.io/acme/a:2", "username": "bot", "password": PASSWORD},
        confirmer=Approve(),
    )

    [patch] = requests_to(sandbox, "PATCH", registry_id)
    assert patch["body"] == {"url": "docker.io/acme/a:2", "username": "bot", "password": PASSWORD}
    assert sandbox.sandbox.store("sesterce.registries")[registry_id]["password"] == PASSWORD
    assert updated.detail["url"] == "docker.io/acme/a:2" and updated.detail["username"] == "bot"
    history = await tk.call("history", {})
    for text in (updated.model_dump_json(), history.model_dump_json()):
        assert PASSWORD not in text and "first-password" not in text


async def test_refusing_sends_nothing_and_is_journaled(tk: Toolkit, sandbox: SandboxServer) -> None:
    args = {"name": "nope", "model_id": "stable-diffusion", "hardware_id": L40S_1, "regions": TWO_REGIONS}

    with pytest.raises(ConfirmationRefused, match="Nothing was sent"):
        await tk.call("sesterce_create_endpoint", args, confirmer=Refuse())
    with pytest.raises(ConfirmationRefused):
        await tk.call(
            "sesterce_create_registry",
            {"name": "r", "url": "u", "username": "n", "password": PASSWORD},
            confirmer=Refuse(),
        )

    assert mutating_requests(sandbox) == []
    rows = (await tk.call("history", {})).items
    assert [r.outcome for r in rows] == ["refused", "refused"]
    assert PASSWORD not in json.dumps([r.model_dump(mode="json") for r in rows])


async def test_a_region_without_capacity_reports_its_error_and_the_rest_serves(
    tk: Toolkit, sandbox: SandboxServer
) -> None:
    regions = [{"region_id": 18, "min": 1, "max": 1}, {"region_id": 36, "min": 1, "max": 1}]
    args = {"name": "thin", "model_id": "llama-3.1-8b-instruct", "hardware_id": H100_1, "regions": regions}

    created = await tk.call("sesterce_create_endpoint", args, confirmer=Approve())
    assert any("region 36 (Frankfurt) reports capacity 0" in w for w in created.plan.warnings)
    assert created.resource is not None

    resource = await wait(tk, created.resource.resource_id)
    assert (resource.status, resource.raw_status, resource.replicas) == ("running", "PARTIALLYDEPLOYED", 1)
    assert len(resource.details["errors"]) == 1 and "Frankfurt" in resource.details["errors"][0]


async def test_unknown_ids_are_refused_before_sending(tk: Toolkit, sandbox: SandboxServer) -> None:
    base = {"name": "x", "model_id": "llama-3.1-8b-instruct", "hardware_id": H100_1, "regions": TWO_REGIONS}
    cases = [
        ({"hardware_id": "nope"}, "no hardware 'nope'"),
        ({"model_id": "nope"}, "no model 'nope'"),
        ({"regions": [{"region_id": 999}]}, "no region 999"),
        ({"hardware_id": L40S_1, "regions": [{"region_id": 52}]}, "region 52 \\(Chicago\\) does not offer"),
        ({"regions": [{"region_id": 18}, {"region_id": 18}]}, "repeated: \\[18\\]"),
    ]
    for change, message in cases:
        with pytest.raises(InvalidInput, match=message):
            await tk.call("sesterce_create_endpoint", {**base, **change}, confirmer=Approve())
    assert mutating_requests(sandbox) == []


async def test_idempotency_key_creates_once(tk: Toolkit, sandbox: SandboxServer) -> None:
    args = {
        "name": "once",
        "model_id": "stable-diffusion",
        "hardware_id": L40S_1,
        "regions": [{"region_id": 18}],
        "idempotency_key": "ses-once-1",
    }

    first = await tk.call("sesterce_create_endpoint", args, confirmer=Approve())
    again = await tk.call("sesterce_create_endpoint", args, confirmer=Approve())

    assert (first.outcome, again.outcome) == ("done", "replayed")
    assert again.resource is not None and first.resource is not None
    assert again.resource.resource_id == first.resource.resource_id
    assert len(requests_to(sandbox, "POST", "/ai-inference/instances")) == 1


async def test_price_cap_refuses_with_the_preview(sandbox: SandboxServer) -> None:
    capped = Toolkit(sandbox_settings(sandbox, max_usd_per_hour=10))
    try:
        args = {
            "name": "big",
            "model_id": "llama-3.1-8b-instruct",
            "hardware_id": H100_1,
            "regions": TWO_REGIONS,
        }
        with pytest.raises(PolicyRefused, match=r"\$14.25/hour is over the cap of \$10/hour"):
            await capped.call("sesterce_create_endpoint", args, confirmer=Approve())
    finally:
        capped.close()
    assert mutating_requests(sandbox) == []


async def test_price_preview_and_offers(tk: Toolkit, sandbox: SandboxServer) -> None:
    quote = await tk.call(
        "sesterce_price_preview",
        {"hardware_id": H100_1, "regions": [{"region_id": 18, "max": 2}, {"region_id": 52, "max": 2}]},
    )
    assert quote.price_per_hour == round(PRICES[H100_1] * 4, 2)
    assert quote.price_per_month == round(quote.price_per_hour * HOURS_PER_MONTH, 2)
    assert quote.gpus == 4

    offers = await tk.call("list_offers", {"provider": "sesterce", "gpu": "H100", "available_only": True})
    assert {(o.offer_id, o.region_id) for o in offers.items} >= {(H100_1, "18"), (H100_1, "52")}
    assert all(o.gpu_model == "H100" and o.usd_per_hour for o in offers.items)
    assert (H100_1, "36") not in {(o.offer_id, o.region_id) for o in offers.items}  # capacity 0
    assert mutating_requests(sandbox) == []


async def test_the_sandbox_checks_the_api_key(sandbox: SandboxServer) -> None:
    settings = sandbox_settings(sandbox).model_copy(update={"sesterce_api_key": SecretStr("not-the-key")})
    wrong = Toolkit(settings)
    try:
        with pytest.raises(AuthError, match="HTTP 403: API key invalid"):
            await wrong.call("sesterce_list_registries", {})
    finally:
        wrong.close()
