"""`gpu-mcp --sandbox` as a subprocess, driven over stdio by the SDK's client."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from tests.mcp_helpers import Human, error_text, structured

pytestmark = pytest.mark.anyio

CREATE = {
    "name": "stdio-demo",
    "model_name": "openai/gpt-oss-20b",
    "flavor_name": "base",
    "gpu_type": "gpu-h100-sxm",
}


def params(home: Path, *extra: str) -> StdioServerParameters:
    env = {"PATH": os.environ.get("PATH", ""), "GPU_TOOLS_HOME": str(home), "HOME": str(home)}
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
    async with Client(params(gpu_home)) as client:  # this client cannot elicit
        refused = await client.call_tool("nebius_create_endpoint", CREATE)
        assert "cannot ask the user" in error_text(refused)
        assert structured(await client.call_tool("list_resources", {}))["items"] == []
