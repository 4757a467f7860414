"""NeoLink AI end to end through `Toolkit.call` against the sandbox: SKUs, create, wait, SSH details,
power off with a snapshot, power on, delete; the NeoLink-only stop arguments refused elsewhere; and
the SSH password never leaking into a default result or the journal."""

from __future__ import annotations

import sqlite3
from typing import Any

import httpx
import pytest

from gpu_tools.errors import AuthError, ConfirmationRefused, InvalidInput, ProviderRejected
from gpu_tools.gate import Approve, Refuse
from gpu_tools.models import MutationResult, Resource
from gpu_tools.providers.neolink import adapter as neolink_adapter
from gpu_tools.sandbox import SandboxServer, fill
from gpu_tools.toolkit import Toolkit
from tests.conftest import mutating_requests, sandbox_settings

pytestmark = pytest.mark.anyio

IMAGE = "images.neolink-ai.com/matrixdc/pytorch:2.3.0-python3.10-cuda12.1.0-devel-ubuntu22.04"
CREATE = {"display_name": "train-1", "image": IMAGE, "gpu_sku_id": "88", "volume_size": 100}


def neolink_requests(sandbox: SandboxServer) -> list[dict[str, Any]]:
    return [r for r in sandbox.sandbox.requests if r["provider"] == "neolink"]


def journal_text(tk: Toolkit) -> str:
    db = sqlite3.connect(str(tk.journal.path))
    try:
        return "\n".join(repr(row) for row in db.execute("SELECT * FROM journal"))
    finally:
        db.close()


async def create(tk: Toolkit, **overrides: Any) -> Resource:
    result = await tk.call("neolink_create_instance", {**CREATE, **overrides}, confirmer=Approve())
    assert isinstance(result, MutationResult) and result.resource is not None
    return result.resource


async def wait(tk: Toolkit, resource_id: str, until: str = "running") -> Resource:
    args = {"provider": "neolink", "resource_id": resource_id, "until": until, "poll_seconds": 0.05}
    result = await tk.call("wait_for_resource", args)
    assert isinstance(result, Resource)
    return result


async def test_regions_and_skus_with_cny_prices_and_usd_estimates(tk: Toolkit) -> None:
    regions = await tk.call("list_regions", {"provider": "neolink"})
    assert {r.name for r in regions.items} == {"北京一区", "上海二区"}
    assert {r.details["cluster_name"] for r in regions.items} == {"host-cluster", "sh2-cluster"}

    h100 = await tk.call("list_offers", {"provider": "neolink", "gpu": "H100"})
    assert {(o.offer_id, o.gpu_count) for o in h100.items} == {("88", 1), ("89", 8)}
    single = next(o for o in h100.items if o.offer_id == "88")
    assert (single.price, single.currency, single.price_estimated) == (25, "CNY", True)
    assert single.usd_per_hour == pytest.approx(25 * tk.settings.usd_per_cny)
    assert single.gpu_memory_gb == 80 and single.details["billing_type"] == "pay-as-you-go"

    shanghai = await tk.call("neolink_list_skus", {"region_id": "上海二区"})
    assert {o.details["billing_type"] for o in shanghai.items} == {"pay-as-you-go", "daily", "weekly"}
    available = await tk.call("neolink_list_skus", {"region_id": "sh2-cluster", "available_only": True})
    assert "102" not in {o.offer_id for o in available.items}  # the sold-out 4090


async def test_instance_lifecycle_with_snapshot_and_no_password_leak(
    tk: Toolkit, sandbox: SandboxServer
) -> None:
    results: list[Any] = []
    created = await create(tk)
    results.append(created)
    assert (created.status, created.raw_status, created.gpu_name) == ("pending", "Creating", "H100")
    rid = created.resource_id

    running = await wait(tk, rid)
    results.append(running)
    assert running.raw_status == "Running"
    assert running.details["ssh_address"].startswith("ssh -p")
    assert running.details["ssh_password"] == "***"
    assert running.url and running.url.endswith("token=***")
    assert running.details["tensorboard_url"].endswith("/monitor")

    shown = await tk.call("get_resource", {"provider": "neolink", "resource_id": rid, "reveal_secrets": True})
    password = shown.details["ssh_password"]
    jupyter_token = shown.url.rsplit("token=", 1)[1]
    assert (
        password != "***"
        and password == (sandbox.sandbox.store("neolink.instances")[rid]["servers"]["SSH"]["sshPassword"])
    )

    listed = await tk.call("list_resources", {"provider": "neolink"})
    results.append(listed)
    assert [r.resource_id for r in listed.items] == [rid]

    stopped = await tk.call(
        "stop_resource",
        {
            "provider": "neolink",
            "resource_id": rid,
            "grace_period_seconds": 30,
            "snapshot_image_name": "train-1-snap",
            "snapshot_tag": "v1",
        },
        confirmer=Approve(),
    )
    results.append(stopped)
    power_off = [r for r in neolink_requests(sandbox) if r["path"].endswith("/power_off")]
    assert power_off[-1]["body"] == {
        "gracePeriodSeconds": 30,
        "needSnapshot": True,
        "imageName": "train-1-snap",
        "tag": "v1",
    }
    assert power_off[-1]["headers"] == {
        "authorization": "bearer ***",
        "namespace": "sandbox-user",
        "content-type": "application/json",
    }
    down = await wait(tk, rid, "stopped")
    results.append(down)
    assert down.raw_status == "Shutdown"
    snapshot = "images.neolink-ai.com/sandbox-user/train-1-snap:v1"
    assert down.details["annotations"]["neolink.ai/snapshot-image"] == snapshot
    assert sandbox.sandbox.store("neolink.snapshots")[snapshot]["instance"] == rid

    started = await tk.call(
        "start_resource", {"provider": "neolink", "resource_id": rid}, confirmer=Approve()
    )
    results.append(started)
    assert started.plan.usd_per_hour == pytest.approx(25 * tk.settings.usd_per_cny)
    power_on = [r for r in neolink_requests(sandbox) if r["path"].endswith("/power_on")]
    assert power_on[-1]["body"] is None
    results.append(await wait(tk, rid))

    deleted = await tk.call(
        "delete_resource", {"provider": "neolink", "resource_id": rid}, confirmer=Approve()
    )
    results.append(deleted)
    delete_call = [r for r in neolink_requests(sandbox) if r["method"] == "DELETE"][-1]
    assert (delete_call["path"], delete_call["query"]) == (
        "/neolink/mdc/api/v1/clusters/host-cluster/instances",
        f"name={rid}",
    )
    gone = await wait(tk, rid, "deleted")
    assert gone.status == "deleting"
    results.append(await tk.call("history", {"provider": "neolink"}))

    for result in results:
        dumped = result.model_dump_json()
        assert password not in dumped and jupyter_token not in dumped
    journal = journal_text(tk)
    assert rid in journal
    assert password not in journal and jupyter_token not in journal


async def test_snapshot_arguments_on_another_provider_are_refused_naming_neolink(
    tk: Toolkit, sandbox: SandboxServer
) -> None:
    for extra in ({"snapshot_image_name": "img"}, {"grace_period_seconds": 5}, {"snapshot_tag": "v1"}):
        with pytest.raises(InvalidInput, match="only NeoLink AI") as info:
            await tk.call(
                "stop_resource", {"provider": "nebius", "resource_id": "dep-1", **extra}, confirmer=Approve()
            )
        assert next(iter(extra)) in str(info.value)
    assert sandbox.sandbox.requests == []


async def test_dry_run_and_refusal_send_nothing(tk: Toolkit, sandbox: SandboxServer) -> None:
    plan = await tk.call("neolink_create_instance", {**CREATE, "dry_run": True})
    assert plan.outcome == "dry_run"
    assert plan.plan.path == "/clusters/host-cluster/instances"
    assert plan.plan.body["Cost"]["GPUSKUID"] == "88" and plan.plan.body["namespace"] == "sandbox-user"
    with pytest.raises(ConfirmationRefused):
        await tk.call("neolink_create_instance", CREATE, confirmer=Refuse())
    assert mutating_requests(sandbox) == []

    rid = (await create(tk)).resource_id
    await wait(tk, rid)
    sandbox.sandbox.requests.clear()
    for name, extra in (
        ("stop_resource", {"snapshot_image_name": "x"}),
        ("delete_resource", {}),
    ):
        result = await tk.call(name, {"provider": "neolink", "resource_id": rid, "dry_run": True, **extra})
        assert result.outcome == "dry_run"
    assert mutating_requests(sandbox) == []


async def test_prepaid_instance_in_a_second_cluster_is_found_by_a_fresh_toolkit(
    tk: Toolkit, sandbox: SandboxServer
) -> None:
    created = await create(
        tk, gpu_sku_id="103", cost_type=3, cost_time="2W", region="上海二区", display_name="weekly"
    )
    assert created.region == "sh2-cluster" and created.details["billing_type"] == "weekly"
    assert created.details["cost_time"] == "2W"
    post = [r for r in mutating_requests(sandbox) if r["method"] == "POST"][-1]
    assert post["path"] == "/neolink/mdc/api/v1/clusters/sh2-cluster/instances"
    assert post["body"]["Region"] == "上海二区"

    fresh = Toolkit(sandbox_settings(sandbox))
    try:
        found = await wait(fresh, created.resource_id)
    finally:
        fresh.close()
    assert found.details["cluster_name"] == "sh2-cluster"


async def test_sold_out_sku_is_warned_about_and_rejected_by_the_provider(tk: Toolkit) -> None:
    args = {**CREATE, "gpu_sku_id": "102", "cost_type": 4, "cost_time": "1D", "region": "sh2-cluster"}
    preview = await tk.call("neolink_create_instance", {**args, "dry_run": True})
    assert any("only 0 GPUs" in w for w in preview.plan.warnings)
    with pytest.raises(ProviderRejected, match="insufficient GPU resources"):
        await tk.call("neolink_create_instance", args, confirmer=Approve())


async def test_powering_on_a_running_instance_is_refused_before_asking(
    tk: Toolkit, sandbox: SandboxServer
) -> None:
    rid = (await create(tk)).resource_id
    await wait(tk, rid)
    with pytest.raises(InvalidInput, match="is running"):
        await tk.call("start_resource", {"provider": "neolink", "resource_id": rid}, confirmer=Approve())
    history = await tk.call("history", {"provider": "neolink", "outcome": "refused"})
    assert [e.operation for e in history.items] == ["start_resource"]
    assert not [r for r in neolink_requests(sandbox) if r["path"].endswith("/power_on")]


async def test_list_reads_1000_instances_in_the_largest_pages(tk: Toolkit, sandbox: SandboxServer) -> None:
    first = (await create(tk, display_name="n0", gpu_sku_id="66")).resource_id
    names = {
        first,
        *fill(sandbox.sandbox, "neolink.instances", first, 999, "name", lambda i: f"instance-{i:08x}"),
    }
    sandbox.sandbox.requests.clear()
    listed = await tk.call("list_resources", {"provider": "neolink"})
    assert [s.status for s in listed.providers] == ["ok"]
    assert {r.resource_id for r in listed.items} == names and len(listed.items) == 1000
    queries = [r["query"] for r in neolink_requests(sandbox) if r["path"].endswith("/host-cluster/instances")]
    assert queries[0] == ""  # the documented unpaged list first: it says more follow
    assert sorted(queries[1:]) == sorted(f"page={n}&pageSize=100" for n in range(1, 11))


async def test_a_listing_cut_short_says_so(
    tk: Toolkit, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = (await create(tk, display_name="n0", gpu_sku_id="66")).resource_id
    fill(sandbox.sandbox, "neolink.instances", first, 299, "name", lambda i: f"instance-{i:08x}")
    monkeypatch.setattr(neolink_adapter, "MAX_PAGES", 2)
    listed = await tk.call("list_resources", {"provider": "neolink"})
    assert len(listed.items) == 200
    [status] = [s for s in listed.providers if s.provider == "neolink"]
    assert status.status == "partial"
    assert (
        status.message == "cluster host-cluster: stopped after 2 pages of 100; 200 of 300 instances listed."
    )
    orphans = await tk.call("find_orphans", {"provider": "neolink"})
    assert orphans.gone == []  # an incomplete listing proves nothing gone


async def test_sandbox_checks_namespace_and_bearer(sandbox: SandboxServer) -> None:
    settings = sandbox_settings(sandbox)
    wrong_ns = Toolkit(settings.model_copy(update={"neolink_namespace": "intruder"}))
    try:
        with pytest.raises(AuthError, match="namespace intruder"):
            await wrong_ns.call("get_resource", {"provider": "neolink", "resource_id": "instance-x"})
    finally:
        wrong_ns.close()
    direct = httpx.get(
        f"{sandbox.url}/neolink/mdc/api/v1/regions",
        headers={"namespace": "sandbox-user", "Authorization": "bearer wrong"},
    )
    assert direct.status_code == 401 and direct.json() == {"code": 401, "msg": "invalid token"}
    missing = httpx.get(
        f"{sandbox.url}/neolink/mdc/api/v1/regions", headers={"Authorization": "bearer sandbox-key"}
    )
    assert missing.status_code == 401


async def test_injected_fault_is_reported_per_provider(tk: Toolkit, sandbox: SandboxServer) -> None:
    httpx.post(f"{sandbox.url}/_sandbox/faults", json={"provider": "neolink", "status": 500})
    offers = await tk.call("list_offers", {})
    status = {p.provider: p for p in offers.providers}
    assert status["neolink"].status == "error" and "sandbox fault injected" in (
        status["neolink"].message or ""
    )
    assert status["nebius"].status == "ok"
