"""NetMind through both fronts against the sandbox: the MCP tools through the SDK's own client
(confirmation by elicitation) and the `%gpu` magics in a real IPython shell. Every NetMind operation
is a tool and a subcommand; the SSH password and the docker password never show."""

from __future__ import annotations

import json
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from mcp import Client

from gpu_tools.errors import ConfirmationRefused, Unsupported
from gpu_tools.providers.netmind import NetmindProvider
from gpu_tools.sandbox import SandboxServer
from mcp_server import build_server
from tests.conftest import mutating_requests, sandbox_settings
from tests.mcp_helpers import Human, error_text, structured

H100_FLAVOR = "e5d2b7a96c3f41d08a7e9c2b4d1f6a38"
H100_NODE = "sbx-us-h100-01"
SSH_PASSWORD = "front-ssh-pass-5521"
DOCKER_PASSWORD = "front-docker-pass-8876"
ENDPOINT = {"name": "front-ep", "flavor_id": H100_FLAVOR, "image_url": "python:3.10-slim", "port": 8080}


def text_of(result: Any) -> str:
    return json.dumps(result.structured_content, ensure_ascii=False) + " ".join(
        getattr(c, "text", "") for c in result.content
    )


@pytest.mark.anyio
async def test_every_netmind_operation_is_an_annotated_tool(sandbox: SandboxServer) -> None:
    async with Client(build_server(sandbox_settings(sandbox, toolsets=["all"]))) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    for op in NetmindProvider.operations:
        tool = tools[op.name]
        assert tool.annotations is not None and tool.description
        assert tool.annotations.read_only_hint is (op.effect == "read"), op.name
    props = tools["netmind_create_endpoint"].input_schema["properties"]
    assert {
        "name",
        "description",
        "payment_type",
        "flavor_id",
        "scale_type",
        "target_instance_number",
        "image_url",
        "command",
        "port",
        "gpu_num",
        "dry_run",
        "idempotency_key",
    } <= set(props)
    machine_filters = set(tools["netmind_list_machines"].input_schema["properties"])
    assert machine_filters == {
        "currency",
        "region",
        "gpu",
        "gpu_names",
        "min_memory",
        "max_memory",
        "min_disk",
        "max_disk",
        "min_price",
        "max_price",
    }


@pytest.mark.anyio
async def test_mcp_rent_gpu_and_endpoint_lifecycle_without_secrets(sandbox: SandboxServer) -> None:
    human = Human("accept", True)
    outputs = []
    async with Client(
        build_server(sandbox_settings(sandbox, toolsets=["all"])), elicitation_callback=human
    ) as client:

        async def call(name: str, args: dict[str, Any]) -> dict[str, Any]:
            outputs.append(await client.call_tool(name, args))
            return structured(outputs[-1])

        auth = await call("netmind_create_auth", {"value": SSH_PASSWORD})
        image = await call(
            "netmind_create_image",
            {
                "name": "private",
                "image_name": "me/app",
                "image_tag": "v1",
                "image_label": "custom",
                "docker_username": "me",
                "docker_passwd": DOCKER_PASSWORD,
            },
        )
        container = await call(
            "netmind_create_container",
            {
                "name": "front-c",
                "auth_id": auth["detail"]["auth_id"],
                "node_name": H100_NODE,
                "image_template_id": image["detail"]["image_id"],
            },
        )
        cref = {"provider": "netmind", "resource_id": container["resource"]["resource_id"]}
        endpoint = await call("netmind_create_endpoint", ENDPOINT)
        eref = {"provider": "netmind", "resource_id": endpoint["resource"]["resource_id"]}
        await call("netmind_get_auth", {"auth_id": auth["detail"]["auth_id"]})
        await call("netmind_get_image", {"image_id": image["detail"]["image_id"]})
        listed = await call("list_resources", {"provider": "netmind"})
        assert {r["resource_id"] for r in listed["items"]} == {cref["resource_id"], eref["resource_id"]}
        await call("wait_for_resource", {**eref, "poll_seconds": 0.05})
        scaled = await call("update_resource", {**eref, "replicas": 2})
        assert scaled["resource"]["replicas"] == 2
        stop_endpoint = await client.call_tool("stop_resource", eref)
        assert "update_resource" in error_text(stop_endpoint)
        await call("stop_resource", cref)
        await call("delete_resource", cref)
        await call("delete_resource", eref)
        await call("history", {})

    for output in outputs:
        text = text_of(output)
        assert SSH_PASSWORD not in text and DOCKER_PASSWORD not in text
    asked = human.messages
    # auth, image, container, endpoint, scale, container stop, two deletes; the endpoint stop never asks
    assert len(asked) == 8
    assert "Create NetMind dedicated endpoint 'front-ep'" in asked[3] and "$2.49/hour" in asked[3]
    assert all(SSH_PASSWORD not in m and DOCKER_PASSWORD not in m for m in asked)


@pytest.mark.anyio
async def test_mcp_dry_run_asks_nothing_and_declining_sends_nothing(sandbox: SandboxServer) -> None:
    human = Human("decline")
    async with Client(
        build_server(sandbox_settings(sandbox, toolsets=["all"])), elicitation_callback=human
    ) as client:
        plan = structured(await client.call_tool("netmind_create_endpoint", {**ENDPOINT, "dry_run": True}))
        assert plan["outcome"] == "dry_run" and plan["plan"]["path"] == "/v1/inference-service"
        assert human.messages == []
        declined = await client.call_tool("netmind_create_endpoint", ENDPOINT)
        assert "Nothing was sent" in error_text(declined) or "not confirmed" in error_text(declined)
    assert len(human.messages) == 1
    assert mutating_requests(sandbox) == []


def test_magic_create_scale_stop_restart_delete_never_shows_passwords(
    shell: InteractiveShell, sandbox: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    def gpu(line: str) -> Any:
        return shell.run_line_magic("gpu", line)

    seen: list[str] = []

    def show(result: Any) -> Any:
        seen.append(repr(result))
        seen.append(result._repr_html_())
        return result

    auth = show(gpu(f"netmind-create-auth --value {SSH_PASSWORD} --yes"))
    auth_id = auth.detail["auth_id"]
    show(gpu(f"netmind-get-auth {auth_id}"))
    image = show(
        gpu(
            "netmind-create-image --name private --image-name me/app --image-tag v1 --image-label custom "
            f"--docker-username me --docker-passwd {DOCKER_PASSWORD} --options '-e MODE=prod' --yes"
        )
    )
    show(gpu(f"netmind-get-image {image.detail['image_id']}"))
    show(gpu("netmind-list-machines --region us --currency CNY"))
    container = show(
        gpu(
            f"netmind-create-container --name magic-c --auth-id {auth_id} --gpu 1 --node-name {H100_NODE} "
            "--image-template-id 1 --yes"
        )
    )
    endpoint = show(
        gpu(
            f"netmind-create-endpoint --name magic-ep --flavor-id {H100_FLAVOR} --image-url python:3.10-slim "
            "--port 8080 --target-instance-number 1 --gpu-num 1 --yes"
        )
    )
    cid, eid = container.resource.resource_id, endpoint.resource.resource_id
    show(gpu("ls --provider netmind"))
    show(gpu(f"wait netmind {eid} --poll-seconds 0.05"))
    scaled = show(gpu(f"scale netmind {eid} --replicas 3 --yes"))
    assert scaled.resource.replicas == 3
    with pytest.raises(Unsupported, match="%gpu scale"):  # the notebook names its own subcommand
        gpu(f"stop netmind {eid} --yes")
    show(gpu(f"stop netmind {cid} --yes"))
    show(gpu(f"start netmind {cid} --yes"))
    show(gpu("netmind-list-containers --limit 5"))
    show(gpu(f"rm netmind {cid} --yes"))
    show(gpu(f"rm netmind {eid} --yes"))
    show(gpu("history --provider netmind"))
    seen.append(capsys.readouterr().out)

    everything = "\n".join(seen)
    assert "Create NetMind container 'magic-c'" in everything and "Confirmed with --yes." in everything
    assert SSH_PASSWORD not in everything and DOCKER_PASSWORD not in everything
    assert gpu("ls --provider netmind").items == []


def test_magic_without_yes_refuses_and_sends_nothing(shell: InteractiveShell, sandbox: SandboxServer) -> None:
    with pytest.raises(ConfirmationRefused):
        shell.run_line_magic(
            "gpu", f"netmind-create-endpoint --name x --flavor-id {H100_FLAVOR} --image-url i --port 80"
        )
    assert mutating_requests(sandbox) == []
