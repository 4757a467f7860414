"""The MCP front through the SDK's own client: tools, annotations, confirmation by elicitation."""

from __future__ import annotations

import pytest
from mcp import Client

from gpu_tools.sandbox import SandboxServer
from mcp_server import build_server
from tests.conftest import mutating_requests, sandbox_settings
from tests.mcp_helpers import Human, error_text, structured

pytestmark = pytest.mark.anyio

MODES = ["auto", "legacy"]
CREATE = {
    "name": "demo",
    "model_name": "openai/gpt-oss-20b",
    "flavor_name": "base",
    "gpu_type": "gpu-h100-sxm",
    "gpu_count": 1,
    "min_replicas": 1,
    "max_replicas": 2,
}


def server_for(sandbox: SandboxServer, **overrides: object):
    return build_server(sandbox_settings(sandbox, **overrides))


async def test_every_tool_has_annotations_and_reads_say_read_only(sandbox: SandboxServer) -> None:
    server = server_for(sandbox)
    async with Client(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    for name in (
        "list_providers",
        "list_offers",
        "list_resources",
        "get_resource",
        "wait_for_resource",
        "history",
        "chat",
        "list_templates",
        "list_regions",
        "update_resource",
        "stop_resource",
        "start_resource",
        "delete_resource",
        "nebius_create_endpoint",
    ):
        assert name in tools, name
    for tool in tools.values():
        assert tool.annotations is not None, tool.name
        assert tool.description, tool.name
    assert tools["list_offers"].annotations.read_only_hint is True
    assert tools["delete_resource"].annotations.destructive_hint is True
    assert tools["nebius_create_endpoint"].annotations.read_only_hint is False
    # argument names are the documented fields, scaling flattened; no hidden resolver parameter leaks
    props = tools["nebius_create_endpoint"].input_schema["properties"]
    assert {
        "name",
        "model_name",
        "flavor_name",
        "gpu_type",
        "gpu_count",
        "region",
        "min_replicas",
        "max_replicas",
        "dry_run",
        "idempotency_key",
    } <= set(props)
    assert "confirmation" not in props and "ctx" not in props


async def test_read_only_registers_no_mutating_tool(sandbox: SandboxServer) -> None:
    async with Client(server_for(sandbox, read_only=True)) as client:
        tools = (await client.list_tools()).tools
    assert tools
    assert all(t.annotations.read_only_hint for t in tools)
    assert "nebius_create_endpoint" not in {t.name for t in tools}


@pytest.mark.parametrize("mode", MODES)
async def test_accepted_create_exists_in_list_resources(sandbox: SandboxServer, mode: str) -> None:
    human = Human("accept", True)
    async with Client(server_for(sandbox), mode=mode, elicitation_callback=human) as client:
        created = structured(await client.call_tool("nebius_create_endpoint", CREATE))
        listed = structured(await client.call_tool("list_resources", {}))
    assert created["outcome"] == "done" and created["sandbox"] is True
    rid = created["resource"]["resource_id"]
    assert rid in [r["resource_id"] for r in listed["items"]]
    assert len(human.messages) == 1
    shown = human.messages[0]
    assert "Create Nebius dedicated endpoint 'demo'" in shown and "POST /v0/dedicated_endpoints" in shown
    assert "Cost:" in shown and "Reversible" in shown and "[SANDBOX]" in shown


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("human", "says"),
    [
        (Human("decline"), "declined"),
        (Human("cancel"), "cancelled"),
        (Human("accept", confirm=False), "answered no"),
    ],
    ids=["decline", "cancel", "accept-false"],
)
async def test_refusals_send_nothing(sandbox: SandboxServer, mode: str, human: Human, says: str) -> None:
    server = server_for(sandbox)
    async with Client(server, mode=mode, elicitation_callback=human) as client:
        result = await client.call_tool("nebius_create_endpoint", CREATE)
    assert says in error_text(result) and "Nothing was sent" in error_text(result)
    assert mutating_requests(sandbox) == []
    rows, _ = server.toolkit.journal.entries()
    assert [r.outcome for r in rows] == ["refused"]


@pytest.mark.parametrize("mode", MODES)
async def test_client_without_elicitation_gets_the_approval_page_and_nothing_is_sent(
    sandbox: SandboxServer, mode: str
) -> None:
    server = server_for(sandbox, approval_wait="0s", approval_open_browser=False)
    server.toolkit.approvals.say = lambda text: None
    async with Client(server, mode=mode) as client:
        result = await client.call_tool("nebius_create_endpoint", CREATE)
    assert structured(result)["outcome"] == "approval_pending"
    assert mutating_requests(sandbox) == []
    server.toolkit.close()


@pytest.mark.parametrize("mode", MODES)
async def test_dry_run_returns_plan_and_asks_nothing(sandbox: SandboxServer, mode: str) -> None:
    human = Human("accept", True)
    async with Client(server_for(sandbox), mode=mode, elicitation_callback=human) as client:
        plan = structured(await client.call_tool("nebius_create_endpoint", {**CREATE, "dry_run": True}))
    assert plan["outcome"] == "dry_run"
    assert plan["plan"]["method"] == "POST" and plan["plan"]["path"] == "/v0/dedicated_endpoints"
    assert plan["plan"]["body"]["scaling"] == {"min_replicas": 1, "max_replicas": 2}
    assert human.messages == []
    assert mutating_requests(sandbox) == []


async def test_bad_input_is_a_short_error_and_sends_nothing(sandbox: SandboxServer) -> None:
    human = Human("accept", True)
    async with Client(server_for(sandbox), elicitation_callback=human) as client:
        wrong_model = await client.call_tool("nebius_create_endpoint", {**CREATE, "model_name": "nope/model"})
        bad_scale = await client.call_tool("nebius_create_endpoint", {**CREATE, "min_replicas": 3})
        bad_provider = await client.call_tool("get_resource", {"provider": "aws", "resource_id": "x"})
    assert "no template for model 'nope/model'" in error_text(wrong_model)
    assert "min_replicas" in error_text(bad_scale)
    assert "provider" in error_text(bad_provider)
    assert human.messages == []
    assert mutating_requests(sandbox) == []


async def test_policy_cap_refuses_before_asking(sandbox: SandboxServer) -> None:
    human = Human("accept", True)
    server = server_for(sandbox, max_gpus=1)
    async with Client(server, elicitation_callback=human) as client:
        result = await client.call_tool("nebius_create_endpoint", CREATE)  # 1 GPU x 2 replicas
    assert "max_gpus" in error_text(result)
    assert human.messages == []
    assert mutating_requests(sandbox) == []
    rows, _ = server.toolkit.journal.entries()
    assert rows[0].outcome == "refused" and "max_gpus" in (rows[0].error or "")


async def test_full_lifecycle_with_progress(sandbox: SandboxServer) -> None:
    human = Human("accept", True)
    progress: list[str] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    async with Client(server_for(sandbox), elicitation_callback=human) as client:
        rid = structured(await client.call_tool("nebius_create_endpoint", CREATE))["resource"]["resource_id"]
        ref = {"provider": "nebius", "resource_id": rid}
        ready = structured(
            await client.call_tool(
                "wait_for_resource", {**ref, "poll_seconds": 0.1}, progress_callback=on_progress
            )
        )
        assert ready["status"] == "running"
        answer = structured(await client.call_tool("chat", {**ref, "message": "hello"}))
        assert "hello" in answer["content"]
        scaled = structured(await client.call_tool("update_resource", {**ref, "max_replicas": 3}))
        assert scaled["resource"]["max_replicas"] == 3
        stopped = structured(await client.call_tool("stop_resource", ref))
        assert stopped["plan"]["body"] == {"enabled": False}
        structured(await client.call_tool("start_resource", ref))
        structured(await client.call_tool("delete_resource", ref))
        history = structured(await client.call_tool("history", {}))
    assert progress and rid in progress[-1]
    assert [e["operation"] for e in history["items"]][:5] == [
        "delete_resource",
        "start_resource",
        "stop_resource",
        "update_resource",
        "nebius_create_endpoint",
    ]
    assert all(e["outcome"] == "ok" for e in history["items"])
    assert len(human.messages) == 5
