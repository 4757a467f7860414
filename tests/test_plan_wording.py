"""Plans say what they change in words: a Nebius scaling change reads "scaling: 1–3 replicas", not a
Python dict, in the core's plan, so the MCP tool and the `%gpu` magic say it alike."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell
from mcp import Client

from gpu_tools.gate import Approve
from gpu_tools.sandbox import SandboxServer
from gpu_tools.toolkit import Toolkit
from mcp_server import build_server
from tests.conftest import mutating_requests
from tests.mcp_helpers import structured

pytestmark = pytest.mark.anyio

CREATE = {
    "name": "words",
    "model_name": "openai/gpt-oss-20b",
    "flavor_name": "base",
    "gpu_type": "gpu-h100-sxm",
}


async def test_a_nebius_scaling_change_is_said_in_words_on_both_fronts(
    tk: Toolkit, sandbox: SandboxServer, shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    created = await tk.call("nebius_create_endpoint", CREATE, confirmer=Approve(True))
    rid = created.resource.resource_id  # type: ignore[attr-defined]
    sandbox.sandbox.requests.clear()
    update = {"provider": "nebius", "resource_id": rid, "min_replicas": 1, "max_replicas": 3, "dry_run": True}
    async with Client(build_server(toolkit=tk)) as client:
        plan = structured(await client.call_tool("update_resource", update))["plan"]
        fixed = structured(
            await client.call_tool("update_resource", {**update, "min_replicas": 2, "max_replicas": 2})
        )
    assert plan["action"].endswith("scaling: 1–3 replicas (was 1).") and "{" not in plan["action"], plan[
        "action"
    ]
    assert fixed["plan"]["action"].endswith("scaling: 2 replicas (was 1).")
    assert plan["body"] == {"scaling": {"min_replicas": 1, "max_replicas": 3}}  # what is sent, unchanged
    shell.run_line_magic("gpu", f"scale nebius {rid} --max-replicas 3 --dry-run")
    shown = capsys.readouterr().out
    assert "scaling: 1–3 replicas (was 1)." in shown and "{'min_replicas'" not in shown
    assert mutating_requests(sandbox) == []
