"""Every refusal leaves a journal row, including a change whose plan cannot be made (the resource is
not there, the model is not offered), through the core and through an MCP client in both protocol
generations; and a bad setting never echoes a token."""

from __future__ import annotations

import pytest
from mcp import Client

from gpu_tools import errors
from gpu_tools.gate import Approve
from gpu_tools.sandbox import SandboxServer
from gpu_tools.settings import load_settings
from gpu_tools.toolkit import Toolkit
from mcp_server import build_server
from tests.conftest import mutating_requests, sandbox_settings
from tests.mcp_helpers import Human, error_text

pytestmark = pytest.mark.anyio
MISSING = {"provider": "nebius", "resource_id": "dep-nope"}
NOT_OFFERED = {
    "name": "x",
    "model_name": "no/such-model",
    "flavor_name": "base",
    "gpu_type": "gpu-h100-sxm",
}


def refused_rows(tk: Toolkit) -> list[str]:
    return [e.error or "" for e in tk.journal.entries(outcome="refused")[0]]


async def test_a_change_whose_plan_cannot_be_made_is_journaled_as_refused(
    tk: Toolkit, sandbox: SandboxServer
) -> None:
    with pytest.raises(errors.NotFound):
        await tk.call("delete_resource", MISSING, confirmer=Approve())
    with pytest.raises(errors.GpuToolsError):
        await tk.call("nebius_create_endpoint", NOT_OFFERED, confirmer=Approve())
    rows = refused_rows(tk)
    assert len(rows) == 2 and all(r.startswith("the plan could not be made") for r in rows)
    assert mutating_requests(sandbox) == []
    # A dry run is a question, not a request: it leaves no row.
    with pytest.raises(errors.NotFound):
        await tk.call("delete_resource", {**MISSING, "dry_run": True})
    assert len(refused_rows(tk)) == 2


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_through_mcp_each_refused_change_leaves_a_row(sandbox: SandboxServer, mode: str) -> None:
    tk = Toolkit(sandbox_settings(sandbox))
    server = build_server(toolkit=tk)
    calls = [
        ("update_resource", {**MISSING, "replicas": 2}),
        ("stop_resource", {"provider": "neolink", "resource_id": "instance-nope"}),
        ("delete_resource", MISSING),
        ("nebius_create_endpoint", NOT_OFFERED),
    ]
    async with Client(server, elicitation_callback=Human("accept", True), mode=mode) as client:
        for name, args in calls:
            result = await client.call_tool(name, args)
            assert result.is_error, name
            assert "Traceback" not in error_text(result)
    assert len(refused_rows(tk)) == len(calls)
    assert mutating_requests(sandbox) == []
    tk.close()


def test_a_bad_http_tokens_entry_never_echoes_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    token = "s3cr3t-TOKEN-abcdef123456"
    monkeypatch.setenv("GPU_TOOLS_HTTP_TOKENS", f'{{"{token}": {{"user": "a", "scopes": ["gpu.wrte"]}}}}')
    with pytest.raises(errors.InvalidInput) as refused:
        load_settings()
    assert "http_tokens" in str(refused.value) and token not in str(refused.value)
