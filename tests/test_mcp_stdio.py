"""`gpu-mcp --sandbox` as a subprocess, driven over stdio by the SDK's client."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from tests.conftest import stdio_env
from tests.mcp_helpers import Human, error_text, structured

pytestmark = pytest.mark.anyio

CREATE = {
    "name": "stdio-demo",
    "model_name": "openai/gpt-oss-20b",
    "flavor_name": "base",
    "gpu_type": "gpu-h100-sxm",
}


def params(home: Path, *extra: str) -> StdioServerParameters:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "GPU_TOOLS_HOME": str(home),
        "HOME": str(home),
        "GPU_TOOLS_APPROVAL_WAIT": "0s",  # a client without a form gets the approval page's link at once
        "GPU_TOOLS_APPROVAL_OPEN_BROWSER": "false",
    }
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcp_server", "--sandbox", "--sandbox-ready-after", "0.2", *extra],
        env=env,
    )


async def test_stdio_accept_then_refuse(gpu_home: Path) -> None:
    human = Human("accept", True)
    async with Client(params(gpu_home), elicitation_callback=human) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert "nebius_create_endpoint" in tools
        created = structured(await client.call_tool("nebius_create_endpoint", CREATE))
        assert created["sandbox"] is True
        rid = created["resource"]["resource_id"]
        listed = structured(await client.call_tool("list_resources", {}))
        assert [r["resource_id"] for r in listed["items"]] == [rid]
        human.action = "decline"
        refused = await client.call_tool("delete_resource", {"provider": "nebius", "resource_id": rid})
        assert "declined" in error_text(refused)
        still = structured(await client.call_tool("list_resources", {}))
        assert [r["resource_id"] for r in still["items"]] == [rid]
        history = structured(await client.call_tool("history", {}))
    assert [e["outcome"] for e in history["items"]] == ["refused", "ok"]


async def test_stdio_read_only_and_no_elicitation(gpu_home: Path) -> None:
    async with Client(params(gpu_home, "--read-only")) as client:
        tools = (await client.list_tools()).tools
        assert tools and all(t.annotations.read_only_hint for t in tools)
    async with Client(params(gpu_home)) as client:  # this client cannot elicit: it gets the page's link
        pending = structured(await client.call_tool("nebius_create_endpoint", CREATE))
        assert pending["outcome"] == "approval_pending" and "/approvals/" in pending["approval"]["url"]
        assert structured(await client.call_tool("list_resources", {}))["items"] == []


async def test_stdio_refuses_unknown_arguments_before_asking(gpu_home: Path) -> None:
    human = Human("accept", True)
    async with Client(params(gpu_home), elicitation_callback=human) as client:
        refused = await client.call_tool("nebius_create_endpoint", {**CREATE, "dryRun": True})
        history = structured(await client.call_tool("history", {}))
        resources = structured(await client.call_tool("list_resources", {}))
    assert "unknown argument 'dryRun' (did you mean 'dry_run'?)" in error_text(refused)
    assert human.messages == [] and resources["items"] == []
    assert [e["outcome"] for e in history["items"]] == ["refused"]


async def test_a_server_killed_mid_create_restarts_with_the_row_unknown_and_reconciles_it(
    gpu_home: Path, sandbox: Any
) -> None:
    """kill -9 while the create's answer is in flight: the journal row survives as unknown, and the
    next server's reconciliation finds the endpoint the provider made."""
    import anyio
    import httpx
    import psutil

    env = stdio_env(
        gpu_home,
        NEBIUS_API_KEY="sandbox-key",
        NEBIUS_BASE_URL=f"{sandbox.url}/nebius",
        GPU_TOOLS_RECONCILE_GRACE_SECONDS="0",
    )
    server = StdioServerParameters(command=sys.executable, args=["-m", "mcp_server"], env=env)
    httpx.post(
        f"{sandbox.url}/_sandbox/faults",
        json={"provider": "nebius", "lose_response": 20, "methods": ["POST"], "count": 1},
    )

    async def made() -> None:
        """The sandbox has the POST and made the endpoint (its answer is held, and will be lost)."""
        while not sandbox.sandbox.store("nebius.endpoints"):
            await anyio.sleep(0.05)

    async with anyio.create_task_group() as tg:
        async with Client(server, elicitation_callback=Human()) as client:
            tg.start_soon(client.call_tool, "nebius_create_endpoint", CREATE)
            with anyio.fail_after(30):
                await made()
            children = psutil.Process().children(recursive=True)
            [proc] = [p for p in children if "mcp_server" in " ".join(p.cmdline())]
            proc.kill()  # SIGKILL: no cleanup runs
            proc.wait(10)
            tg.cancel_scope.cancel()

    async with Client(server) as client:
        before = structured(await client.call_tool("history", {}))
        report = structured(await client.call_tool("reconcile", {}))
        after = structured(await client.call_tool("history", {}))
    assert [e["outcome"] for e in before["items"]] == ["unknown"]
    [item] = report["items"]
    assert item["outcome"] == "ok" and item["resource_id"]
    assert after["items"][0]["outcome"] == "ok" and after["items"][0]["resource_id"] == item["resource_id"]
    assert len([r for r in sandbox.sandbox.requests if r["method"] == "POST"]) == 1


async def test_stdio_toolsets_flag(gpu_home: Path) -> None:
    async with Client(params(gpu_home, "--toolsets", "reads,netmind_rent")) as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert "list_offers" in names and "netmind_create_container" in names
    assert "delete_resource" not in names and "nebius_create_endpoint" not in names


def test_unknown_toolset_is_a_short_error(gpu_home: Path) -> None:
    from mcp_server.cli import main

    with pytest.raises(SystemExit, match="unknown tool set 'everything'"):
        main(["--toolsets", "everything"])
