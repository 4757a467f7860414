"""One market across providers, and spend safety: offers, caps, spend, expiry and orphans."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from IPython.core.interactiveshell import InteractiveShell
from mcp import Client

from gpu_tools import errors
from gpu_tools.gate import Approve, Refuse
from gpu_tools.gpus import canonical_gpu, gpu_memory_gb
from gpu_tools.models import Plan
from gpu_tools.sandbox import SandboxServer
from gpu_tools.toolkit import Toolkit
from mcp_server import build_server
from tests.clock import FakeClock
from tests.conftest import mutating_requests, sandbox_settings
from tests.mcp_helpers import Human, structured

pytestmark = pytest.mark.anyio

IMAGE = "images.neolink-ai.com/matrixdc/pytorch:2.3.0-python3.10-cuda12.1.0-devel-ubuntu22.04"
NEOLINK = {"display_name": "train-1", "image": IMAGE, "gpu_sku_id": "88", "volume_size": 100}
NEBIUS = {"name": "nb", "model_name": "openai/gpt-oss-20b", "flavor_name": "base", "gpu_type": "gpu-h100-sxm"}
AUTH = {"Authorization": "Bearer sandbox-key"}


class Recorder:
    """A confirmer that remembers being asked and says yes."""

    def __init__(self) -> None:
        self.asked: list[Plan] = []

    async def confirm(self, plan: Plan) -> bool:
        self.asked.append(plan)
        return True


def toolkit(sandbox: SandboxServer, **overrides: object) -> Toolkit:
    return Toolkit(sandbox_settings(sandbox, **overrides))


# ---- normalized offers ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "model", "memory"),
    [
        ("NVIDIA_H100_SXM5_80GB", "H100", 80),
        ("gpu-h100-sxm", "H100", 80),
        ("H100", "H100", 80),
        ("1xL40S / 16 vCPU / 232GiB RAM", "L40S", 48),
        ("NVIDIA_GeForce_RTX_4090", "RTX 4090", 24),
        ("A100-40GB", "A100", 40),
        ("gpu-h200-sxm", "H200", 141),
        ("something else", None, None),
    ],
)
def test_gpu_names_become_one_vocabulary(name: str, model: str | None, memory: float | None) -> None:
    assert canonical_gpu(name) == model
    assert gpu_memory_gb(name) == memory


async def test_offers_from_all_providers_sorted_by_usd_per_gpu_hour(sandbox: SandboxServer) -> None:
    tk = toolkit(sandbox, nebius_gpu_usd_per_hour={"gpu-h100-sxm": 2.95})
    listing = await tk.call("list_offers", {})
    assert {p.provider: p.status for p in listing.providers} == {
        "nebius": "ok",
        "netmind": "ok",
        "sesterce": "ok",
        "neolink": "ok",
    }
    assert {o.provider for o in listing.items} == {"nebius", "netmind", "sesterce", "neolink"}
    priced = [o.usd_per_gpu_hour for o in listing.items if o.usd_per_gpu_hour is not None]
    assert priced == sorted(priced) and len(priced) > 4
    for offer in listing.items:
        assert offer.gpu_name
        if offer.usd_per_hour is not None:
            assert offer.currency
    neolink = [o for o in listing.items if o.provider == "neolink" and o.usd_per_hour is not None]
    assert neolink and all(o.price_estimated and o.currency == "CNY" for o in neolink)
    nebius_h100 = [o for o in listing.items if o.provider == "nebius" and o.gpu_name == "gpu-h100-sxm"]
    assert nebius_h100 and all(o.usd_per_gpu_hour == 2.95 and o.price_estimated for o in nebius_h100)
    tk.close()


async def test_filters_combine(tk: Toolkit) -> None:
    h100 = (
        await tk.call("list_offers", {"gpu": "h100", "max_usd_per_gpu_hour": 100, "available_only": True})
    ).items
    assert h100 and all(
        o.gpu_model == "H100" and o.usd_per_gpu_hour <= 100 and o.available is not False for o in h100
    )
    containers = (await tk.call("list_offers", {"kind": "container"})).items
    assert containers and {o.provider for o in containers} == {"netmind"}
    big = (await tk.call("list_offers", {"min_gpu_count": 2, "min_gpu_memory_gb": 80})).items
    assert all(o.gpu_count >= 2 and o.gpu_memory_gb >= 80 for o in big)


class HoldsProvider(httpx.AsyncBaseTransport):
    """A toolkit's transport that holds one provider's answers until the test calls `release()`: its
    requests reach the sandbox, which answers them; the client gets those answers only once released
    (or, for all, after 60 s of the event loop's clock, so a fan-out without a time budget fails, not hangs).
    Every other provider's answers pass through at once."""

    def __init__(self, provider: str) -> None:
        self._through = httpx.AsyncHTTPTransport()
        self._prefix = f"/{provider}/"
        self._released = asyncio.Event()
        self.held = 0

    def release(self) -> None:
        self._released.set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._through.handle_async_request(request)
        if request.url.path.startswith(self._prefix) and not self._released.is_set():
            self.held += 1
            try:
                await asyncio.wait_for(self._released.wait(), 60)
            except TimeoutError:
                self.release()
        return response

    async def aclose(self) -> None:
        await self._through.aclose()


def leap_loop_clock(seconds: float) -> None:
    """Move the running event loop's clock `seconds` ahead, as if they had passed: every timer on the
    loop (a fan-out's time budget) that falls due within them fires now, and no real time passes."""
    loop = asyncio.get_running_loop()
    before = loop.time
    loop.time = lambda: before() + seconds  # type: ignore[method-assign]


async def test_one_failing_and_one_slow_provider_do_not_hide_the_others(sandbox: SandboxServer) -> None:
    # A budget no provider that answers can miss, however busy the machine. NeoLink's answers are held
    # until after the checks; once every other provider has answered, the loop's clock moves past the
    # budget, so NeoLink's budget (and only its) runs out, with no wait and no race.
    budget = 30.0
    neolink = HoldsProvider("neolink")
    tk = Toolkit(sandbox_settings(sandbox, provider_timeout=budget), transport=neolink)
    # 403 is not retried, so the failure is reported as an error however busy the machine is.
    httpx.post(f"{sandbox.url}/_sandbox/faults", json={"provider": "sesterce", "status": 403})
    leaps: list[str] = []

    async def progress(done: float, total: float | None, message: str) -> None:
        if total is not None and done == total - 1 and message.endswith("waiting for neolink"):
            leaps.append(message)
            leap_loop_clock(budget + 1)

    try:
        listing = await tk.call("list_offers", {"refresh": True}, progress=progress)
        status = {p.provider: p for p in listing.providers}
        assert len(leaps) == 1 and neolink.held >= 1  # NeoLink was asked, and was the one left waiting
        assert status["sesterce"].status == "error" and "HTTP 403" in status["sesterce"].message
        assert status["neolink"].status == "timeout" and f"within {budget:g}s" in status["neolink"].message
        assert status["nebius"].status == status["netmind"].status == "ok"
        assert {o.provider for o in listing.items} == {"nebius", "netmind"}
    finally:
        neolink.release()
    # The fetch the budget gave up on went on in the background; it now answers its next caller.
    late = await tk.call("list_offers", {"provider": "neolink", "refresh": True})
    assert [p.status for p in late.providers] == ["ok"] and late.items
    await tk.aclose()
    tk.close()


async def test_offers_are_cached_until_refresh(tk: Toolkit, sandbox: SandboxServer) -> None:
    await tk.call("list_offers", {})
    first = len(sandbox.sandbox.requests)
    again = await tk.call("list_offers", {})
    assert len(sandbox.sandbox.requests) == first and again.items
    await tk.call("list_offers", {"refresh": True})
    assert len(sandbox.sandbox.requests) > first


# ---- cost in every plan, and caps ------------------------------------------------------------
async def test_create_plans_state_cost_and_its_source(sandbox: SandboxServer) -> None:
    tk = toolkit(sandbox, nebius_gpu_usd_per_hour={"gpu-h100-sxm": 3.0})
    neolink = (await tk.call("neolink_create_instance", {**NEOLINK, "dry_run": True})).plan
    assert neolink.usd_per_hour and neolink.price_source
    nebius = (await tk.call("nebius_create_endpoint", {**NEBIUS, "max_replicas": 3, "dry_run": True})).plan
    assert (nebius.usd_per_hour, nebius.usd_per_hour_max) == (3.0, 9.0)
    assert "nebius_gpu_usd_per_hour" in nebius.price_source and "up to $9.00/hour" in nebius.message()
    tk.close()


async def test_create_over_the_cap_is_refused_before_asking(sandbox: SandboxServer) -> None:
    tk = toolkit(sandbox, max_usd_per_hour=0.01)
    human = Recorder()
    with pytest.raises(
        errors.PolicyRefused, match=r"max_usd_per_hour: \$[\d.]+/hour is over the cap of \$0.01/hour"
    ):
        await tk.call("neolink_create_instance", NEOLINK, confirmer=human)
    assert human.asked == [] and mutating_requests(sandbox) == []
    tk.close()


async def test_total_cap_counts_what_is_already_live(sandbox: SandboxServer) -> None:
    probe = toolkit(sandbox)
    one = (await probe.call("neolink_create_instance", {**NEOLINK, "dry_run": True})).plan.usd_per_hour
    probe.close()
    tk = toolkit(sandbox, max_total_usd_per_hour=one * 1.5)
    await tk.call("neolink_create_instance", NEOLINK, confirmer=Approve())
    human = Recorder()
    with pytest.raises(
        errors.PolicyRefused, match="max_total_usd_per_hour: live and in-flight resources cost"
    ):
        await tk.call("neolink_create_instance", {**NEOLINK, "display_name": "train-2"}, confirmer=human)
    assert human.asked == []
    assert len([r for r in mutating_requests(sandbox) if r["method"] == "POST"]) == 1
    tk.close()


async def test_allowed_gpu_models(sandbox: SandboxServer) -> None:
    tk = toolkit(sandbox, allowed_gpu_models=["L40S"])
    with pytest.raises(errors.PolicyRefused, match=r"allowed_gpu_models: gpu-h100-sxm \(H100\)"):
        await tk.call("nebius_create_endpoint", NEBIUS, confirmer=Approve())
    assert mutating_requests(sandbox) == []
    tk.close()


# ---- spend, expiry, orphans ---------------------------------------------------------------------
async def test_spend_lists_live_resources_with_hourly_and_accrued_cost(tk: Toolkit) -> None:
    created = await tk.call("neolink_create_instance", {**NEOLINK, "expires_in": "2h"}, confirmer=Approve())
    await tk.call("nebius_create_endpoint", NEBIUS, confirmer=Approve())
    await tk.call(
        "wait_for_resource",
        {"provider": "neolink", "resource_id": created.resource.resource_id, "poll_seconds": 0.1},
    )
    report = await tk.call("spend", {})
    lines = {line.provider: line for line in report.items}
    assert set(lines) == {"neolink", "nebius"}
    # SKU 88 costs 25 CNY an hour in the sandbox; at the default 0.14 USD per CNY that is $3.50.
    assert lines["neolink"].usd_per_hour == pytest.approx(3.50)
    assert lines["neolink"].accrued_usd >= 0 and lines["neolink"].tracked
    assert lines["neolink"].expires_at == created.plan.expires_at
    assert lines["nebius"].usd_per_hour is None and any("no price known" in n for n in report.notes)
    assert report.total_usd_per_hour == pytest.approx(lines["neolink"].usd_per_hour)
    assert {p.provider for p in report.by_provider} == {"nebius", "neolink"}


async def test_spend_converts_cny_at_the_configured_rate(sandbox: SandboxServer) -> None:
    tk = Toolkit(sandbox_settings(sandbox, usd_per_cny=0.2))
    try:
        await tk.call("neolink_create_instance", NEOLINK, confirmer=Approve())
        report = await tk.call("spend", {})
    finally:
        tk.close()
    assert [(line.provider, line.usd_per_hour) for line in report.items] == [("neolink", pytest.approx(5.0))]
    assert report.total_usd_per_hour == pytest.approx(5.0)


async def test_reap_expired_deletes_what_has_expired_after_confirmation(sandbox: SandboxServer) -> None:
    clock = FakeClock()
    tk = Toolkit(sandbox_settings(sandbox), now=clock)
    nothing = await tk.call("reap_expired", {}, confirmer=Refuse())
    assert nothing.outcome == "done" and nothing.detail == {"steps": []}
    short = await tk.call("neolink_create_instance", {**NEOLINK, "expires_in": "1s"}, confirmer=Approve())
    await tk.call(
        "neolink_create_instance",
        {**NEOLINK, "display_name": "keep", "expires_in": "2h"},
        confirmer=Approve(),
    )
    clock.advance(5)  # the first one's second is past; the other has 2 h to go
    sandbox.sandbox.requests.clear()
    dry = await tk.call("reap_expired", {"dry_run": True})
    assert [s.target for s in dry.plan.steps] == [short.resource.resource_id]
    assert "Delete 1 expired resource(s)" in dry.plan.message() and mutating_requests(sandbox) == []
    with pytest.raises(errors.ConfirmationRefused):
        await tk.call("reap_expired", {}, confirmer=Refuse())
    assert mutating_requests(sandbox) == []
    done = await tk.call("reap_expired", {}, confirmer=Approve())
    assert [s["outcome"] for s in done.detail["steps"]] == ["ok"]
    assert [r["method"] for r in mutating_requests(sandbox)] == ["DELETE"]
    live = {e.resource_id for e in tk.journal.live()}
    assert short.resource.resource_id not in live and len(live) == 1
    tk.close()


async def test_find_orphans_reports_resources_made_elsewhere_and_gone(
    tk: Toolkit, sandbox: SandboxServer
) -> None:
    body = {
        **NEBIUS,
        "name": "made-elsewhere",
        "gpu_count": 1,
        "region": "eu-north1",
        "scaling": {"min_replicas": 1, "max_replicas": 1},
    }
    direct = httpx.post(f"{sandbox.url}/nebius/v0/dedicated_endpoints", json=body, headers=AUTH).json()
    mine = await tk.call("nebius_create_endpoint", NEBIUS, confirmer=Approve())
    vanished = await tk.call("nebius_create_endpoint", {**NEBIUS, "name": "vanished"}, confirmer=Approve())
    httpx.delete(f"{sandbox.url}/nebius/v0/dedicated_endpoints/{vanished.resource.resource_id}", headers=AUTH)
    report = await tk.call("find_orphans", {})
    assert [r.resource_id for r in report.untracked] == [direct["id"]]
    assert [e.resource_id for e in report.gone] == [vanished.resource.resource_id]
    assert mine.resource.resource_id not in {r.resource_id for r in report.untracked}


# ---- through the fronts ------------------------------------------------------------------------
async def test_mcp_market_tools(sandbox: SandboxServer) -> None:
    human = Human("accept", True)
    clock = FakeClock()
    tk = Toolkit(sandbox_settings(sandbox), now=clock)
    async with Client(build_server(toolkit=tk), elicitation_callback=human) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["spend"].annotations.read_only_hint and tools["find_orphans"].annotations.read_only_hint
        assert tools["reap_expired"].annotations.destructive_hint
        assert "expires_in" in tools["neolink_create_instance"].input_schema["properties"]
        structured(await client.call_tool("neolink_create_instance", {**NEOLINK, "expires_in": "1s"}))
        clock.advance(5)
        reaped = structured(await client.call_tool("reap_expired", {}))
        spend = structured(await client.call_tool("spend", {}))
    assert reaped["detail"]["steps"][0]["outcome"] == "ok"
    assert "Delete 1 expired resource(s)" in human.messages[-1]
    assert spend["items"] == [] and spend["total_usd_per_hour"] == 0
    tk.close()


def test_magics_render_spend_and_orphans(shell: InteractiveShell) -> None:
    shell.run_line_magic(
        "gpu", f"neolink-create-instance --display-name m --image {IMAGE} --gpu-sku-id 88 --yes"
    )
    spend = shell.run_line_magic("gpu", "spend")
    assert "Now: $" in repr(spend) and "neolink" in repr(spend) and "<table>" in spend._repr_html_()
    orphans = shell.run_line_magic("gpu", "orphans")
    assert "Created here but gone: 0" in repr(orphans)
    with pytest.raises(errors.InvalidInput, match="expires_in"):
        shell.run_line_magic(
            "gpu",
            f"neolink-create-instance --display-name m --image {IMAGE} --gpu-sku-id 88 "
            "--expires-in soon --yes",
        )
