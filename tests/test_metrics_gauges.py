"""The journal gauges a scrape reads agree with what the caps count: a stopped resource bills no GPU,
a resource of unknown cost is counted apart (never as $0 in the sum), and a question open under a
long `approval_ttl` stays pending until it expires."""

from __future__ import annotations

import re

import pytest

from gpu_tools.gate import Approve
from gpu_tools.metrics import Metrics
from gpu_tools.sandbox import SandboxServer
from gpu_tools.toolkit import Toolkit
from tests.clock import FakeClock
from tests.conftest import sandbox_settings

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("journal_backend")]

IMAGE = "images.neolink-ai.com/matrixdc/pytorch:2.3.0-python3.10-cuda12.1.0-devel-ubuntu22.04"
H100 = {"image": IMAGE, "gpu_sku_id": "88"}  # NeoLink H100: $3.50/hour
NEBIUS = {
    "name": "demo",
    "model_name": "openai/gpt-oss-20b",
    "flavor_name": "base",
    "gpu_type": "gpu-h100-sxm",
}


def gauges(tk: Toolkit) -> dict[str, float]:
    text, _ = Metrics(lambda: tk.journal, tk.settings, ["nebius", "neolink"]).render()
    found = {}
    for line in text.decode().splitlines():
        match = re.fullmatch(r"(gpu_tools_(?:live|approvals)_\w+)(\{[^}]*\})? (\S+)", line)
        if match:
            found[match[1] + (match[2] or "")] = float(match[3])
    return found


async def test_the_cost_gauges_leave_out_stopped_resources_and_count_unknown_costs_apart(
    sandbox: SandboxServer,
) -> None:
    sandbox.sandbox.ready_after = 0
    tk = Toolkit(sandbox_settings(sandbox))
    await tk.call("neolink_create_instance", {**H100, "display_name": "runs"}, confirmer=Approve())
    stopped = await tk.call("neolink_create_instance", {**H100, "display_name": "stops"}, confirmer=Approve())
    ref = {"provider": "neolink", "resource_id": stopped.resource.resource_id}
    await tk.call("stop_resource", ref, confirmer=Approve())
    made = await tk.call("nebius_create_endpoint", NEBIUS, confirmer=Approve())  # Nebius: no price known
    assert made.plan.usd_per_hour is None
    seen = gauges(tk)
    assert seen['gpu_tools_live_resources{provider="neolink"}'] == 2
    assert seen['gpu_tools_live_usd_per_hour{provider="neolink"}'] == pytest.approx(3.5)  # not 7.00
    assert seen['gpu_tools_live_unpriced_resources{provider="neolink"}'] == 0
    assert seen['gpu_tools_live_resources{provider="nebius"}'] == 1
    assert seen['gpu_tools_live_usd_per_hour{provider="nebius"}'] == 0
    assert seen['gpu_tools_live_unpriced_resources{provider="nebius"}'] == 1
    tk.close()


async def test_a_page_question_stays_pending_for_its_whole_approval_ttl(sandbox: SandboxServer) -> None:
    clock = FakeClock()
    tk = Toolkit(sandbox_settings(sandbox, approval="page", approval_ttl="1h"), now=clock)
    page = await tk.question("neolink_create_instance", {**H100, "display_name": "page"}, page=True)
    form = Toolkit(sandbox_settings(sandbox), now=clock)  # a form question: open APPROVAL_TTL (10 min)
    asked = await form.question("neolink_create_instance", {**H100, "display_name": "form"})
    denied = await tk.question("neolink_create_instance", {**H100, "display_name": "denied"}, page=True)
    assert page is not None and asked is not None and denied is not None and page.approval.mode is not None
    assert gauges(tk)["gpu_tools_approvals_pending"] == 3
    tk.journal.decide(denied.approval.id, "denied", by="bob", how="page")  # answered: no longer pending
    assert gauges(tk)["gpu_tools_approvals_pending"] == 2
    clock.advance(11 * 60)  # the form question expired; the page question is open for 49 more minutes
    assert gauges(tk)["gpu_tools_approvals_pending"] == 1
    clock.advance(50 * 60)
    assert gauges(tk)["gpu_tools_approvals_pending"] == 0
    form.close()
    tk.close()
