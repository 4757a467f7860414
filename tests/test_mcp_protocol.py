"""Resources, resource templates, completions and prompts through the SDK's own client, in both
protocol generations; and the MCP Inspector CLI against `gpu-mcp --sandbox`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client, MCPError, types

from gpu_tools import choices
from gpu_tools.sandbox import SandboxServer
from gpu_tools.toolkit import registry
from mcp_server import build_server
from mcp_server.resources import RESOURCE_TEMPLATE
from tests.conftest import sandbox_settings
from tests.mcp_helpers import Human, structured

pytestmark = pytest.mark.anyio
MODES = pytest.mark.parametrize("mode", ["auto", "legacy"])

NEBIUS = {"name": "r1", "model_name": "openai/gpt-oss-20b", "flavor_name": "base", "gpu_type": "gpu-h100-sxm"}
IMAGE = "images.neolink-ai.com/matrixdc/pytorch:2.3.0-python3.10-cuda12.1.0-devel-ubuntu22.04"
NEOLINK = {"display_name": "res-1", "image": IMAGE, "gpu_sku_id": "88"}


def client(sandbox: SandboxServer, mode: str, **overrides: Any) -> Client:
    server = build_server(sandbox_settings(sandbox, **overrides))
    return Client(server, elicitation_callback=Human(), mode=mode)  # type: ignore[arg-type]


async def read_json(c: Client, uri: str) -> Any:
    contents = (await c.read_resource(uri)).contents
    assert len(contents) == 1 and contents[0].mime_type == "application/json"
    return json.loads(contents[0].text)  # type: ignore[union-attr]


# ---- resources --------------------------------------------------------------------------------
@MODES
async def test_journal_spend_and_each_live_resource_are_readable(sandbox: SandboxServer, mode: str) -> None:
    async with client(sandbox, mode) as c:
        created = structured(await c.call_tool("nebius_create_endpoint", NEBIUS))["resource"]
        rid = created["resource_id"]
        assert created["uri"] == f"gpu://nebius/{rid}"

        listed = {r.uri: r for r in (await c.list_resources()).resources}
        assert {"gpu://journal", "gpu://spend", "gpu://providers", created["uri"]} <= set(listed)
        assert listed[created["uri"]].mime_type == "application/json"
        templates = [t.uri_template for t in (await c.list_resource_templates()).resource_templates]
        assert templates == [RESOURCE_TEMPLATE]

        journal = await read_json(c, "gpu://journal")
        assert journal["sandbox"] is True and journal["items"][0]["uri"] == created["uri"]
        assert journal["items"][0]["operation"] == "nebius_create_endpoint"
        assert journal["items"][0]["resource_id"] == rid

        resource = await read_json(c, created["uri"])
        assert resource["resource_id"] == rid and resource["status"] in ("pending", "running")

        spend = await read_json(c, "gpu://spend")
        assert [line["uri"] for line in spend["items"]] == [created["uri"]]
        assert "total_usd_per_hour" in spend

        providers = await read_json(c, "gpu://providers")
        assert {p["name"] for p in providers["items"]} == {"nebius", "sesterce", "neolink", "netmind"}

        listed_tool = structured(await c.call_tool("list_resources", {"provider": "nebius"}))
        assert [r["uri"] for r in listed_tool["items"]] == [created["uri"]]

        structured(await c.call_tool("delete_resource", {"provider": "nebius", "resource_id": rid}))
        after = {r.uri for r in (await c.list_resources()).resources}
        assert created["uri"] not in after and "gpu://journal" in after


@MODES
async def test_reading_a_missing_or_unknown_resource_is_a_clear_error(
    sandbox: SandboxServer, mode: str
) -> None:
    async with client(sandbox, mode) as c:
        with pytest.raises(MCPError, match="no dedicated endpoint 'nope'"):
            await c.read_resource("gpu://nebius/nope")
        with pytest.raises(MCPError, match="provider:? must be one of"):
            await c.read_resource("gpu://bogus/nope")
    assert not [r for r in sandbox.sandbox.requests if r["method"] != "GET"]


async def test_resources_keep_secrets_masked(sandbox: SandboxServer) -> None:
    async with client(sandbox, "auto") as c:
        created = structured(await c.call_tool("neolink_create_instance", NEOLINK))["resource"]
        ref = {"provider": "neolink", "resource_id": created["resource_id"], "poll_seconds": 0.05}
        assert structured(await c.call_tool("wait_for_resource", ref))["reached"] is True
        texts = [(await c.read_resource(created["uri"])).contents[0].text]  # type: ignore[union-attr]
        texts.append((await c.read_resource("gpu://journal")).contents[0].text)  # type: ignore[union-attr]
    servers = sandbox.sandbox.store("neolink.instances")[created["resource_id"]]["servers"]
    password, token = servers["SSH"]["sshPassword"], servers["Jupyterlab"].rsplit("token=", 1)[1]
    assert json.loads(texts[0])["details"]["ssh_password"] == "***"
    for text in texts:
        assert password not in text and token not in text


async def test_resources_obey_allowed_providers(sandbox: SandboxServer) -> None:
    async with client(sandbox, "auto") as c:
        created = structured(await c.call_tool("nebius_create_endpoint", NEBIUS))["resource"]
    async with client(sandbox, "auto", allowed_providers=["neolink"]) as c:
        assert created["uri"] not in {r.uri for r in (await c.list_resources()).resources}
        with pytest.raises(MCPError, match="allowed_providers"):
            await c.read_resource(created["uri"])


# ---- completions ------------------------------------------------------------------------------
async def complete(
    c: Client,
    ref: types.PromptReference | types.ResourceTemplateReference,
    name: str,
    value: str,
    **given: str,
) -> list[str]:
    answer = await c.complete(ref, {"name": name, "value": value}, given or None)
    assert answer.completion.total in (None, len(answer.completion.values))
    return answer.completion.values


@MODES
async def test_completions_for_prompt_and_template_arguments(sandbox: SandboxServer, mode: str) -> None:
    deploy = types.PromptReference(name="deploy_cheapest")
    template = types.ResourceTemplateReference(uri=RESOURCE_TEMPLATE)
    async with client(sandbox, mode) as c:
        rid = structured(await c.call_tool("nebius_create_endpoint", NEBIUS))["resource"]["resource_id"]
        assert sorted(await complete(c, deploy, "provider", "")) == [
            "nebius",
            "neolink",
            "netmind",
            "sesterce",
        ]
        assert await complete(c, deploy, "provider", "NE") == ["nebius", "neolink", "netmind"]
        assert await complete(c, template, "provider", "ses") == ["sesterce"]
        assert (await complete(c, deploy, "gpu", "h1"))[0] == "H100"
        assert "eu-north1" in await complete(c, deploy, "region", "eu", provider="nebius")
        assert "openai/gpt-oss-20b" in await complete(c, deploy, "template", "openai", provider="nebius")
        assert await complete(c, template, "resource_id", "", provider="nebius") == [rid]
        assert rid not in await complete(c, template, "resource_id", "", provider="neolink")
        check = types.PromptReference(name="check_resource")
        assert await complete(c, check, "resource_id", rid[:6], provider="nebius") == [rid]
        assert await complete(c, types.PromptReference(name="no_such_prompt"), "provider", "") == []
        assert await complete(c, deploy, "expires_in", "") == []


async def test_resource_id_completion_includes_what_the_providers_list(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    """A resource this server never created (made by another journal) is offered from the listing."""
    other = sandbox_settings(sandbox, journal_path=tmp_path / "other.sqlite3")
    async with Client(build_server(other), elicitation_callback=Human()) as c:
        elsewhere = structured(await c.call_tool("nebius_create_endpoint", NEBIUS))["resource"]["resource_id"]
    template = types.ResourceTemplateReference(uri=RESOURCE_TEMPLATE)
    async with client(sandbox, "auto") as c:
        assert await c.list_resources() is not None
        assert await complete(c, template, "resource_id", "dep-", provider="nebius") == [elsewhere]
        assert elsewhere in await complete(c, template, "resource_id", "")


async def test_a_prompt_refuses_a_price_that_is_not_a_number(sandbox: SandboxServer) -> None:
    async with client(sandbox, "auto") as c:
        with pytest.raises(MCPError, match="must be a number"):
            await c.get_prompt("deploy_cheapest", {"max_usd_per_gpu_hour": "cheap"})


async def test_completions_follow_policy(sandbox: SandboxServer) -> None:
    async with client(sandbox, "auto", allowed_providers=["nebius", "netmind"]) as c:
        ref = types.PromptReference(name="clean_up_costs")
        assert await complete(c, ref, "provider", "") == ["nebius", "netmind"]


async def test_a_slow_provider_never_holds_up_a_completion(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Live ids from the journal are offered even when the provider does not answer in the budget."""
    monkeypatch.setattr(choices, "BUDGET_SECONDS", 0.2)
    template = types.ResourceTemplateReference(uri=RESOURCE_TEMPLATE)
    async with client(sandbox, "auto") as c:
        rid = structured(await c.call_tool("nebius_create_endpoint", NEBIUS))["resource"]["resource_id"]
        httpx.post(f"{sandbox.url}/_sandbox/faults", json={"provider": "nebius", "latency": 3})
        assert await complete(c, template, "resource_id", "", provider="nebius") == [rid]
        assert (
            await complete(c, types.PromptReference(name="deploy_cheapest"), "region", "", provider="nebius")
            == []
        )


# ---- prompts ----------------------------------------------------------------------------------
CALL = re.compile(r"\b([a-z][a-z0-9_]+)\(([^()]*)\)")


def tool_calls(text: str) -> list[tuple[str, list[str]]]:
    return [(name, re.findall(r"(\w+)=", args)) for name, args in CALL.findall(text)]


@MODES
async def test_prompts_name_real_tools_and_arguments(sandbox: SandboxServer, mode: str) -> None:
    ops = {op.name: op for op in registry()}
    async with client(sandbox, mode) as c:
        prompts = {p.name: p for p in (await c.list_prompts()).prompts}
        assert set(prompts) == {"deploy_cheapest", "clean_up_costs", "check_resource"}
        assert all(p.description and p.title for p in prompts.values())
        required = {a.name for a in prompts["check_resource"].arguments or [] if a.required}
        assert required == {"provider", "resource_id"}
        assert all(a.description for p in prompts.values() for a in p.arguments or [])
        texts = {
            "deploy_cheapest": await c.get_prompt(
                "deploy_cheapest",
                {"gpu": "H100", "max_usd_per_gpu_hour": "3", "template": "openai/gpt-oss-20b"},
            ),
            "clean_up_costs": await c.get_prompt("clean_up_costs", {"provider": "nebius"}),
            "check_resource": await c.get_prompt(
                "check_resource", {"provider": "nebius", "resource_id": "d-1"}
            ),
        }
    seen: set[str] = set()
    for name, result in texts.items():
        text = result.messages[0].content.text  # type: ignore[union-attr]
        calls = tool_calls(text)
        assert len(calls) >= 4, name
        for tool, args in calls:
            assert tool in ops, f"{name} names an unknown tool {tool}"
            assert set(args) <= set(ops[tool].input.model_fields), f"{name}: {tool}({args})"
            seen.add(tool)
    assert {"list_offers", "wait_for_resource", "chat", "delete_resource", "spend", "reap_expired"} <= seen
    deploy = texts["deploy_cheapest"].messages[0].content.text  # type: ignore[union-attr]
    assert 'list_offers(gpu="H100", max_usd_per_gpu_hour=3.0, available_only=true)' in deploy
    assert "nebius_create_endpoint" in deploy and "netmind_create_container" in deploy
    assert "netmind_create_auth" not in deploy  # creates nothing that runs on a GPU
    assert "gpu://nebius/d-1" in texts["check_resource"].messages[0].content.text  # type: ignore[union-attr]


async def test_deploy_prompt_lists_only_allowed_providers_create_tools(sandbox: SandboxServer) -> None:
    async with client(sandbox, "legacy", allowed_providers=["nebius"]) as c:
        text = (await c.get_prompt("deploy_cheapest", {})).messages[0].content.text  # type: ignore[union-attr]
    assert "nebius_create_endpoint" in text and "netmind_" not in text and "neolink_" not in text


# ---- an external client -----------------------------------------------------------------------
INSPECTOR = Path(__file__).parent / "node" / "node_modules" / ".bin" / "mcp-inspector"


def inspector(method: str, *extra: str, home: Path) -> subprocess.CompletedProcess[str]:
    gpu_mcp = Path(sys.executable).with_name("gpu-mcp")
    return subprocess.run(
        # The Inspector hands its server a minimal environment: the journal's home goes with -e.
        [
            str(INSPECTOR),
            "--cli",
            "-e",
            f"GPU_TOOLS_HOME={home}",
            str(gpu_mcp),
            "--sandbox",
            "--method",
            method,
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "GPU_TOOLS_HOME": str(home)},
    )


def test_mcp_inspector_cli_lists_tools_resources_and_calls_a_read(gpu_home: Path) -> None:
    """The MCP Inspector (pinned in tests/node, installed by .ci/run) drives gpu-mcp over stdio.
    In CI it must run; elsewhere it is skipped until `npm ci --prefix tests/node` has been run."""
    if not INSPECTOR.exists():
        if os.environ.get("CI"):
            pytest.fail(f"the MCP Inspector is not installed at {INSPECTOR}: .ci/run runs npm ci for it")
        pytest.skip("the MCP Inspector is not installed: run `npm ci --prefix tests/node`")

    tools = inspector("tools/list", home=gpu_home)
    assert tools.returncode == 0, tools.stderr
    assert "wait_for_resource" in {t["name"] for t in json.loads(tools.stdout)["tools"]}

    resources = inspector("resources/list", home=gpu_home)
    assert resources.returncode == 0, resources.stderr
    assert "gpu://journal" in {r["uri"] for r in json.loads(resources.stdout)["resources"]}

    journal = inspector("resources/read", "--uri", "gpu://journal", home=gpu_home)
    assert journal.returncode == 0, journal.stderr
    assert json.loads(json.loads(journal.stdout)["contents"][0]["text"])["sandbox"] is True

    called = inspector("tools/call", "--tool-name", "list_providers", home=gpu_home)
    assert called.returncode == 0, called.stderr
    result = json.loads(called.stdout)
    assert not result.get("isError") and result["structuredContent"]["sandbox"] is True
