"""NeoLink AI through both fronts against the sandbox: the MCP tools through the SDK's own client
(confirmation by elicitation) and the `%gpu` magics in a real IPython shell. The SSH password and
the Jupyter token never appear in a default tool result or in anything the magic shows."""

from __future__ import annotations

import json
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from mcp import Client

from gpu_tools.sandbox import SandboxServer
from mcp_server import build_server
from tests.conftest import mutating_requests, sandbox_settings
from tests.mcp_helpers import Human, error_text, structured

IMAGE = "images.neolink-ai.com/matrixdc/pytorch:2.3.0-python3.10-cuda12.1.0-devel-ubuntu22.04"
CREATE = {"display_name": "front-1", "image": IMAGE, "gpu_sku_id": "88"}


def secrets_of(sandbox: SandboxServer, resource_id: str) -> list[str]:
    """The SSH password and Jupyter token the sandbox handed out for this instance."""
    servers = sandbox.sandbox.store("neolink.instances")[resource_id]["servers"]
    return [servers["SSH"]["sshPassword"], servers["Jupyterlab"].rsplit("token=", 1)[1]]


def text_of(result: Any) -> str:
    return json.dumps(result.structured_content, ensure_ascii=False) + " ".join(
        getattr(c, "text", "") for c in result.content
    )


@pytest.mark.anyio
async def test_mcp_create_get_stop_with_snapshot_and_no_secret_in_results(sandbox: SandboxServer) -> None:
    human = Human("accept", True)
    async with Client(build_server(sandbox_settings(sandbox)), elicitation_callback=human) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        props = tools["neolink_create_instance"].input_schema["properties"]
        assert {"display_name", "image", "gpu_sku_id", "cost_type", "cost_time", "coupon_id"} <= set(props)
        assert {"disk_sku_id", "volume_path", "volume_size", "volume_type", "region", "dry_run"} <= set(props)
        assert {"snapshot_image_name", "snapshot_tag", "grace_period_seconds"} <= set(
            tools["stop_resource"].input_schema["properties"]
        )
        assert tools["neolink_list_skus"].annotations.read_only_hint is True

        outputs = [await client.call_tool("neolink_create_instance", CREATE)]
        rid = structured(outputs[0])["resource"]["resource_id"]
        ref = {"provider": "neolink", "resource_id": rid}
        outputs.append(await client.call_tool("wait_for_resource", {**ref, "poll_seconds": 0.05}))
        outputs.append(await client.call_tool("get_resource", ref))
        outputs.append(await client.call_tool("list_resources", {"provider": "neolink"}))
        got = structured(outputs[-2])
        assert got["details"]["ssh_password"] == "***" and got["details"]["ssh_address"].startswith("ssh ")
        outputs.append(
            await client.call_tool(
                "stop_resource", {**ref, "snapshot_image_name": "snap", "snapshot_tag": "v2"}
            )
        )
        assert structured(outputs[-1])["plan"]["body"] == {
            "needSnapshot": True,
            "imageName": "snap",
            "tag": "v2",
        }
        outputs.append(await client.call_tool("history", {}))

        refused = await client.call_tool(
            "stop_resource", {"provider": "nebius", "resource_id": "dep-1", "snapshot_image_name": "snap"}
        )
        assert "only NeoLink AI" in error_text(refused)

        revealed = structured(await client.call_tool("get_resource", {**ref, "reveal_secrets": True}))

    password, token = secrets_of(sandbox, rid)
    assert revealed["details"]["ssh_password"] == password
    for output in outputs:
        text = text_of(output)
        assert password not in text and token not in text
    shown = human.messages
    assert len(shown) == 2
    assert (
        "Create NeoLink instance 'front-1'" in shown[0] and "CNY" in shown[0] and "pay-as-you-go" in shown[0]
    )
    assert "snap:v2" in shown[1]
    assert all(password not in m for m in shown)


@pytest.mark.anyio
async def test_mcp_dry_run_create_asks_nothing_and_sends_nothing(sandbox: SandboxServer) -> None:
    human = Human("accept", True)
    async with Client(build_server(sandbox_settings(sandbox)), elicitation_callback=human) as client:
        plan = structured(await client.call_tool("neolink_create_instance", {**CREATE, "dry_run": True}))
        bad = await client.call_tool("neolink_create_instance", {**CREATE, "cost_type": 7})
    assert plan["outcome"] == "dry_run" and plan["plan"]["path"] == "/clusters/host-cluster/instances"
    assert "cost_type" in error_text(bad)
    assert human.messages == []
    assert mutating_requests(sandbox) == []


def test_magic_create_with_yes_get_stop_start_delete_never_shows_the_password(
    shell: InteractiveShell, sandbox: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    def gpu(line: str) -> Any:
        return shell.run_line_magic("gpu", line)

    seen: list[str] = []

    def show(result: Any) -> None:
        seen.append(repr(result))
        seen.append(result._repr_html_())

    created = gpu(
        f"neolink-create-instance --display-name magic-1 --image {IMAGE} --gpu-sku-id 88 "
        "--volume-size 100 --volume-type shared-filesystem --yes"
    )
    show(created)
    rid = created.resource.resource_id
    show(gpu(f"wait neolink {rid} --poll-seconds 0.05"))
    got = gpu(f"get neolink {rid}")
    show(got)
    password, token = secrets_of(sandbox, rid)  # read now: the instance is gone after rm
    assert got.details["ssh_password"] == "***"
    show(gpu("ls --provider neolink"))
    stopped = gpu(
        f"stop neolink {rid} --snapshot-image-name magic-snap --snapshot-tag v1 --grace-period-seconds 5 --yes"
    )
    show(stopped)
    assert stopped.plan.body == {
        "gracePeriodSeconds": 5,
        "needSnapshot": True,
        "imageName": "magic-snap",
        "tag": "v1",
    }
    show(gpu(f"wait neolink {rid} --until stopped --poll-seconds 0.05"))
    show(gpu(f"start neolink {rid} --yes"))
    show(gpu(f"wait neolink {rid} --poll-seconds 0.05"))
    show(gpu(f"rm neolink {rid} --yes"))
    show(gpu("history --provider neolink"))
    seen.append(capsys.readouterr().out)

    everything = "\n".join(seen)
    assert "Create NeoLink instance 'magic-1'" in everything and "Confirmed with --yes." in everything
    assert password not in everything and token not in everything
    snapshots = sandbox.sandbox.store("neolink.snapshots")
    assert "images.neolink-ai.com/sandbox-user/magic-snap:v1" in snapshots


def test_magic_refuses_bad_billing_before_sending(shell: InteractiveShell, sandbox: SandboxServer) -> None:
    from gpu_tools.errors import InvalidInput

    with pytest.raises(InvalidInput, match="does not match daily"):
        shell.run_line_magic(
            "gpu",
            f"neolink-create-instance --display-name x --image {IMAGE} --gpu-sku-id 88 --cost-type daily "
            "--cost-time 1M --yes",
        )
    assert mutating_requests(sandbox) == []
