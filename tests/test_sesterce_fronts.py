"""Sesterce Cloud through both fronts against the sandbox: the MCP tools through the SDK's own
client (confirmation by elicitation, whose message carries Sesterce's price preview) and the
`%gpu` magics in a real IPython shell. The registry password never appears in what either shows."""

from __future__ import annotations

import json
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from mcp import Client

from gpu_tools.sandbox import SandboxServer
from gpu_tools.sandbox.sesterce import H100_1, HOURS_PER_MONTH, PRICES
from mcp_server import build_server
from tests.conftest import mutating_requests, sandbox_settings
from tests.mcp_helpers import Human, error_text, structured

PASSWORD = "mcp-registry-password-42"
REGIONS = [
    {"region_id": 18, "min": 1, "max": 2, "gpu_utilization_threshold": 80},
    {"region_id": 78, "min": 1, "max": 3, "http_rate": 12, "http_window": 20},
]
CREATE = {"name": "front-1", "model_id": "llama-3.1-8b-instruct", "hardware_id": H100_1, "regions": REGIONS}
MAX_HOURLY = round(PRICES[H100_1] * 5, 2)


def text_of(result: Any) -> str:
    return json.dumps(result.structured_content, ensure_ascii=False) + " ".join(
        getattr(c, "text", "") for c in result.content
    )


@pytest.mark.anyio
async def test_mcp_registry_and_endpoint_with_the_price_in_the_confirmation(sandbox: SandboxServer) -> None:
    human = Human("accept", True)
    async with Client(
        build_server(sandbox_settings(sandbox, toolsets=["all"])), elicitation_callback=human
    ) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert {
            "sesterce_create_endpoint",
            "sesterce_update_endpoint",
            "sesterce_price_preview",
            "sesterce_list_registries",
            "sesterce_create_registry",
            "sesterce_update_registry",
            "sesterce_delete_registry",
        } <= set(tools)
        schema = tools["sesterce_create_endpoint"].input_schema
        assert {"name", "model_id", "hardware_id", "regions", "envs", "pod_lifetime", "api_key_ids"} <= set(
            schema["properties"]
        )
        assert tools["sesterce_price_preview"].annotations.read_only_hint is True
        assert tools["sesterce_delete_registry"].annotations.destructive_hint is True

        outputs = [
            await client.call_tool(
                "sesterce_create_registry",
                {"name": "priv", "url": "docker.io/acme/llm:1", "username": "acme", "password": PASSWORD},
            )
        ]
        outputs.append(await client.call_tool("sesterce_list_registries", {}))
        outputs.append(await client.call_tool("sesterce_create_endpoint", CREATE))
        created = structured(outputs[-1])
        rid = created["resource"]["resource_id"]
        ref = {"provider": "sesterce", "resource_id": rid}
        outputs.append(await client.call_tool("wait_for_resource", {**ref, "poll_seconds": 0.05}))
        assert structured(outputs[-1])["raw_status"] == "ACTIVE"
        outputs.append(await client.call_tool("update_resource", {**ref, "max_replicas": 4}))
        outputs.append(await client.call_tool("delete_resource", ref))
        outputs.append(await client.call_tool("history", {}))

        human.action = "decline"
        declined = await client.call_tool("sesterce_create_endpoint", {**CREATE, "name": "front-2"})
        assert "declined" in error_text(declined)

    shown = human.messages
    assert len(shown) == 5
    assert "Create Sesterce registry 'priv'" in shown[0]
    assert "Create Sesterce inference instance 'front-1'" in shown[1]
    assert f"up to ${MAX_HOURLY:.2f}/hour at max scale" in shown[1]
    assert f"{MAX_HOURLY * HOURS_PER_MONTH:.2f} USD/month" in shown[1]
    assert "in each of its 2 region(s)" in shown[2]
    assert "NOT reversible" in shown[3]
    for text in [*shown, *map(text_of, outputs)]:
        assert PASSWORD not in text
    assert len([r for r in mutating_requests(sandbox) if r["path"].endswith("/instances")]) == 1


@pytest.mark.anyio
async def test_mcp_dry_run_shows_the_preview_asks_nothing_and_sends_nothing(sandbox: SandboxServer) -> None:
    human = Human("accept", True)
    async with Client(
        build_server(sandbox_settings(sandbox, toolsets=["all"])), elicitation_callback=human
    ) as client:
        plan = structured(await client.call_tool("sesterce_create_endpoint", {**CREATE, "dry_run": True}))
        bad = await client.call_tool(
            "sesterce_create_endpoint", {**CREATE, "regions": [{"region_id": 18, "min": 3, "max": 1}]}
        )
    assert plan["outcome"] == "dry_run"
    assert plan["plan"]["usd_per_hour_max"] == MAX_HOURLY
    assert any("USD/month" in w for w in plan["plan"]["warnings"])
    assert "min 3 exceeds max 1" in error_text(bad)
    assert human.messages == []
    assert mutating_requests(sandbox) == []


def test_magic_create_with_yes_in_two_regions_then_scale_stop_start_delete(
    shell: InteractiveShell, sandbox: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    def gpu(line: str) -> Any:
        return shell.run_line_magic("gpu", line)

    seen: list[str] = []

    def show(result: Any) -> None:
        seen.append(repr(result))
        seen.append(result._repr_html_())

    registry = gpu(
        f"sesterce-create-registry priv --url docker.io/acme/llm:1 --username acme --password {PASSWORD} --yes"
    )
    show(registry)
    preview = gpu(f"sesterce-price-preview {H100_1} --regions 18:1-2,78:1-3")
    show(preview)
    assert preview.price_per_hour == MAX_HOURLY
    created = gpu(
        f"sesterce-create-endpoint magic-1 --model-id llama-3.1-8b-instruct --hardware-id {H100_1} "
        '--regions 18:1-2,78:1-3 --envs \'{"HF_TOKEN": "hf_magic"}\' '
        f"--registry-id {registry.detail['registry_id']} --yes"
    )
    show(created)
    assert [
        (c["regionId"], c["scale"]["min"], c["scale"]["max"])
        for c in created.plan.body["autoScalingConfigurations"]
    ] == [
        (18, 1, 2),
        (78, 1, 3),
    ]
    rid = created.resource.resource_id
    show(gpu(f"wait sesterce {rid} --poll-seconds 0.05"))
    json_regions = json.dumps([{"region_id": 18, "min": 1, "max": 2, "cpu_threshold": 70}])
    updated = gpu(f"sesterce-update-endpoint {rid} --regions '{json_regions}' --yes")
    show(updated)
    assert updated.plan.body["autoScalingConfigurations"] == [
        {
            "regionId": 18,
            "scale": {"min": 1, "max": 2, "cooldownPeriod": 300, "triggers": {"cpu": {"threshold": 70}}},
        }
    ]
    show(gpu(f"scale sesterce {rid} --max-replicas 3 --yes"))
    show(gpu(f"stop sesterce {rid} --yes"))
    show(gpu(f"wait sesterce {rid} --until stopped --poll-seconds 0.05"))
    show(gpu(f"start sesterce {rid} --yes"))
    show(gpu(f"wait sesterce {rid} --poll-seconds 0.05"))
    show(gpu(f"rm sesterce {rid} --yes"))
    show(gpu("sesterce-list-registries"))
    show(gpu("history --provider sesterce"))
    seen.append(capsys.readouterr().out)

    everything = "\n".join(seen)
    assert "Create Sesterce inference instance 'magic-1'" in everything
    assert "Confirmed with --yes." in everything and "USD/month" in everything
    assert PASSWORD not in everything and "hf_magic" not in everything
    [sent] = [r for r in mutating_requests(sandbox) if r["path"].endswith("/ai-inference/instances")]
    assert sent["body"]["envs"] == {"HF_TOKEN": "hf_magic"}


def test_magic_without_yes_and_without_stdin_sends_nothing(
    shell: InteractiveShell, sandbox: SandboxServer
) -> None:
    from gpu_tools.errors import ConfirmationRefused

    with pytest.raises(ConfirmationRefused, match="Nothing was sent"):
        shell.run_line_magic(
            "gpu",
            f"sesterce-create-endpoint x --model-id stable-diffusion --hardware-id {H100_1} --regions 18",
        )
    assert mutating_requests(sandbox) == []
