"""Tool sets, the tool-list budget, lean results and spec annotations, through the SDK's own client."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import Client

from gpu_tools.errors import InvalidInput
from gpu_tools.operations import TOOLSETS
from gpu_tools.sandbox import SandboxServer
from gpu_tools.settings import Settings
from gpu_tools.toolkit import registry
from mcp_server import build_server
from tests.conftest import mutating_requests, sandbox_settings
from tests.mcp_helpers import Human, structured

pytestmark = pytest.mark.anyio

MODES = ["auto", "legacy"]
PROVIDER_PREFIXES = ("netmind_", "sesterce_", "neolink_", "nebius_")
NEBIUS_CREATE = {
    "name": "lean",
    "model_name": "openai/gpt-oss-20b",
    "flavor_name": "base",
    "gpu_type": "gpu-h100-sxm",
    "gpu_count": 1,
}


async def tools_of(settings: Settings, mode: str = "auto") -> dict[str, Any]:
    async with Client(build_server(settings), mode=mode) as client:
        return {t.name: t for t in (await client.list_tools()).tools}


def nulls(value: Any, path: str = "") -> list[str]:
    if value is None:
        return [path or "(root)"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in nulls(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in nulls(v, f"{path}[{i}]")]
    return []


def text_json(result: Any) -> Any:
    (block,) = result.content
    assert "\n" not in block.text and ", " not in block.text[:200]  # compact, not pretty-printed
    return json.loads(block.text)


# ---- tool sets ---------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
async def test_only_nebius_configured_lists_no_other_providers_tool(
    sandbox: SandboxServer, mode: str
) -> None:
    only_nebius = Settings(
        nebius_api_key="k",
        nebius_base_url=f"{sandbox.url}/nebius",
        nebius_inference_base_url=f"{sandbox.url}/nebius",
    )
    tools = await tools_of(only_nebius, mode)
    assert not [n for n in tools if n.startswith(("netmind_", "sesterce_", "neolink_"))]
    assert {"nebius_create_endpoint", "list_offers", "delete_resource", "stop_resource"} <= set(tools)


async def test_only_nebius_key_in_the_environment(gpu_home: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEBIUS_API_KEY", "from-env")
    tools = await tools_of(Settings())
    assert [n for n in tools if n.startswith(PROVIDER_PREFIXES)] == ["nebius_create_endpoint"]


async def test_defaults_follow_credentials_and_allowed_providers(sandbox: SandboxServer) -> None:
    everything = await tools_of(sandbox_settings(sandbox))
    assert {"nebius_create_endpoint", "sesterce_create_endpoint", "neolink_create_instance"} <= set(
        everything
    )
    assert "netmind_create_endpoint" in everything
    # the sets one setting away are not listed by default
    assert "netmind_create_container" not in everything and "sesterce_create_registry" not in everything
    allowed = await tools_of(sandbox_settings(sandbox, allowed_providers=["sesterce"]))
    assert [n for n in allowed if n.startswith(PROVIDER_PREFIXES)] == ["sesterce_create_endpoint"]
    # an explicit choice cannot bring back a provider outside allowed_providers
    chosen = await tools_of(sandbox_settings(sandbox, allowed_providers=["sesterce"], toolsets=["all"]))
    assert not [n for n in chosen if n.startswith(("netmind_", "neolink_", "nebius_"))]
    assert "sesterce_create_registry" in chosen


@pytest.mark.parametrize("mode", MODES)
async def test_toolsets_choose_explicitly(sandbox: SandboxServer, mode: str) -> None:
    reads = await tools_of(sandbox_settings(sandbox, toolsets=["reads"]), mode)
    assert reads and all(t.annotations.read_only_hint for t in reads.values())
    assert "list_offers" in reads and "delete_resource" not in reads
    more = await tools_of(sandbox_settings(sandbox, toolsets=["default", "netmind_rent"]), mode)
    assert {"netmind_create_container", "netmind_create_auth", "nebius_create_endpoint"} <= set(more)
    every = await tools_of(sandbox_settings(sandbox, toolsets=["all"]), mode)
    assert set(every) == set(registry().names())


async def test_toolsets_setting_from_the_environment_and_unknown_names(
    gpu_home: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GPU_TOOLS_TOOLSETS", "reads, sesterce_admin")
    assert Settings().toolsets == ["reads", "sesterce_admin"]
    tools = await tools_of(Settings())
    assert "sesterce_list_registries" in tools and "update_resource" not in tools
    with pytest.raises(InvalidInput, match="unknown tool set 'nope'"):
        build_server(Settings(toolsets=["reads", "nope"]))


def test_every_operation_declares_a_known_toolset() -> None:
    for op in registry():
        assert op.toolset in TOOLSETS, op.name
        if op.provider:
            assert op.toolset.split("_")[0] == op.provider, op.name


@pytest.mark.parametrize("mode", MODES)
async def test_list_providers_names_every_set_and_how_to_turn_it_on(
    sandbox: SandboxServer, mode: str
) -> None:
    async with Client(build_server(sandbox_settings(sandbox)), mode=mode) as client:
        listed = structured(await client.call_tool("list_providers", {}))
    sets = {s["name"]: s for s in listed["toolsets"]}
    assert set(sets) == set(TOOLSETS)
    assert sets["reads"]["enabled"] and sets["nebius"]["enabled"]
    assert sets["netmind_rent"].get("enabled", False) is False  # false is the default, left out
    assert "netmind_create_container" in sets["netmind_rent"]["tools"]
    assert "--toolsets" in listed["how_to_enable"] and "GPU_TOOLS_TOOLSETS" in listed["how_to_enable"]
    # every tool of the registry is named in some set: nothing is out of reach
    named = {tool for s in sets.values() for tool in s["tools"]}
    assert named == set(registry().names())
    netmind = next(p for p in listed["items"] if p["name"] == "netmind")
    assert netmind["toolsets"] == ["netmind", "netmind_rent"]


async def test_read_only_removes_every_mutating_tool_and_all_confirmation_talk(
    sandbox: SandboxServer,
) -> None:
    server = build_server(sandbox_settings(sandbox, read_only=True, toolsets=["all"]))
    async with Client(server) as client:
        tools = (await client.list_tools()).tools
        instructions = client.instructions or ""
    assert tools and all(t.annotations.read_only_hint for t in tools)
    assert not [op.name for op in registry() if op.mutating and op.name in {t.name for t in tools}]
    for text in [instructions, *(t.description or "" for t in tools)]:
        assert "confirm" not in text.lower(), text
    assert "read-only" in instructions


# ---- descriptions and annotations --------------------------------------------------------------
async def test_annotations_follow_the_spec(sandbox: SandboxServer) -> None:
    tools = await tools_of(sandbox_settings(sandbox, toolsets=["all"]))
    for name in ("update_resource", "stop_resource", "sesterce_update_endpoint", "sesterce_update_registry"):
        assert tools[name].annotations.destructive_hint is True, name
    assert tools["delete_resource"].annotations.destructive_hint is True
    assert tools["start_resource"].annotations.destructive_hint is False
    assert tools["nebius_create_endpoint"].annotations.destructive_hint is False
    for tool in tools.values():
        ann = tool.annotations
        if ann.read_only_hint:
            assert ann.destructive_hint is None and ann.idempotent_hint is None, tool.name
        else:
            assert ann.destructive_hint is not None, tool.name


async def test_every_parameter_is_described_and_confirmation_is_said_once(sandbox: SandboxServer) -> None:
    tools = await tools_of(sandbox_settings(sandbox, toolsets=["all"]))

    def undescribed(schema: dict[str, Any], where: str) -> list[str]:
        missing = [
            f"{where}.{n}" for n, p in schema.get("properties", {}).items() if not p.get("description")
        ]
        for name, sub in schema.get("$defs", {}).items():
            missing += undescribed(sub, f"{where}.$defs.{name}")
        return missing

    missing = [m for t in tools.values() for m in undescribed(t.input_schema, t.name)]
    assert missing == []
    for tool in tools.values():
        count = tool.description.lower().count("confirm")
        assert count == (0 if tool.annotations.read_only_hint else 1), (tool.name, tool.description)


async def test_neolink_billing_is_named_choices_with_the_integer_on_the_wire(sandbox: SandboxServer) -> None:
    tools = await tools_of(sandbox_settings(sandbox))
    props = tools["neolink_create_instance"].input_schema["properties"]
    assert props["cost_type"]["enum"] == ["pay_as_you_go", "monthly", "weekly", "daily"]
    assert props["cost_type"]["default"] == "pay_as_you_go"
    args = {
        "display_name": "named",
        "image": "images.neolink-ai.com/matrixdc/pytorch:2.3.0",
        "gpu_sku_id": "102",
        "region": "sh2-cluster",
        "cost_type": "daily",
        "cost_time": "2 days",
        "dry_run": True,
    }
    async with Client(build_server(sandbox_settings(sandbox))) as client:
        plan = structured(await client.call_tool("neolink_create_instance", args))["plan"]
        bad = await client.call_tool("neolink_create_instance", {**args, "cost_type": "yearly"})
    assert plan["body"]["Cost"]["CostType"] == "4" and plan["body"]["Cost"]["CostTime"] == "2D"
    assert bad.is_error and "cost_type" in bad.content[0].text
    assert mutating_requests(sandbox) == []


# ---- budgets and lean results ------------------------------------------------------------------
async def test_tool_list_fits_its_budgets_with_every_provider_configured(sandbox: SandboxServer) -> None:
    async with Client(build_server(sandbox_settings(sandbox))) as client:
        listed = await client.list_tools()
    wire = listed.model_dump(mode="json", by_alias=True, exclude_none=True)
    read = [
        {k: t[k] for k in ("name", "title", "description", "inputSchema") if k in t} for t in wire["tools"]
    ]
    size = lambda v: len(json.dumps(v, separators=(",", ":")).encode())  # noqa: E731
    assert size(wire) <= 60 * 1024
    assert size(read) <= 24 * 1024
    # one output schema per result type, and none repeats pydantic's titles
    assert '"title": "' not in json.dumps([t.get("outputSchema") for t in wire["tools"]])


@pytest.mark.parametrize("mode", MODES)
async def test_results_are_compact_without_nulls_or_repeated_notes(sandbox: SandboxServer, mode: str) -> None:
    human = Human("accept", True)
    async with Client(
        build_server(sandbox_settings(sandbox)), mode=mode, elicitation_callback=human
    ) as client:
        results = {
            "offers": await client.call_tool("list_offers", {}),
            "dry_run": await client.call_tool("nebius_create_endpoint", {**NEBIUS_CREATE, "dry_run": True}),
            "created": await client.call_tool("nebius_create_endpoint", NEBIUS_CREATE),
            "resources": await client.call_tool("list_resources", {}),
            "history": await client.call_tool("history", {}),
            "spend": await client.call_tool("spend", {}),
            "providers": await client.call_tool("list_providers", {}),
        }
        rid = structured(results["created"])["resource"]["resource_id"]
        got = structured(await client.call_tool("get_resource", {"provider": "nebius", "resource_id": rid}))
        verbose = structured(await client.call_tool("list_offers", {"verbose": True}))
    for name, result in results.items():
        data = structured(result)
        assert nulls(data) == [], (name, nulls(data))
        assert text_json(result) == data, name
    offers = structured(results["offers"])
    assert all("details" not in o for o in offers["items"])
    # what every NeoLink offer used to repeat in its details is said once for the listing
    assert sum("usd_per_cny" in n for n in offers["notes"]) == 1
    # a USD price for the whole offer is its usd_per_hour, and a provider's price age is said once
    assert all(o.get("currency") != "USD" or o["price"] != o["usd_per_hour"] for o in offers["items"])
    assert any(o.get("currency") == "CNY" and "price" in o for o in offers["items"])
    assert all("price_age_seconds" not in o for o in offers["items"])  # one fetch's ages: said once
    assert any("price_age_seconds" in n for n in offers["notes"])
    assert any(
        o.get("currency") == "USD" and o.get("price_age_seconds") is not None for o in verbose["items"]
    )
    assert ".0," not in results["offers"].content[0].text  # whole numbers without ".0"
    assert any(o.get("details") for o in verbose["items"])
    assert "details" in got and got["resource_id"] == rid


async def test_schemas_are_kept_between_starts_and_rebuilt_when_the_code_changes(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mcp_server import schemas

    first = await tools_of(sandbox_settings(sandbox))
    stored = json.loads(schemas.cache_file().read_text())
    assert stored["key"] == schemas.code_key() and stored["schemas"]
    # a start reads them back: poison one stored schema and it is what gets listed
    name = "input gpu_tools.operations.ListOffersInput"
    stored["schemas"][name] = {"type": "object", "properties": {"from_the_cache": {"type": "string"}}}
    schemas.cache_file().write_text(json.dumps(stored))
    assert (
        "from_the_cache"
        in (await tools_of(sandbox_settings(sandbox)))["list_offers"].input_schema["properties"]
    )
    # another code key (any source file changed) builds them again
    monkeypatch.setattr(schemas, "code_key", lambda: "another")
    again = await tools_of(sandbox_settings(sandbox))
    assert again["list_offers"].input_schema == first["list_offers"].input_schema
    assert json.loads(schemas.cache_file().read_text())["key"] == "another"
    schemas.cache_file().write_text("not json")
    assert (await tools_of(sandbox_settings(sandbox)))["list_offers"].input_schema == first[
        "list_offers"
    ].input_schema


def test_a_providers_price_ages_are_said_once_when_close_and_kept_when_far_apart() -> None:
    from gpu_tools.models import Listing, Offer
    from mcp_server import brief_offers

    def offer(provider: str, age: int, price: float = 2.0, currency: str = "USD") -> Offer:
        return Offer(
            provider=provider,
            kind="instance",
            offer_id=f"{provider}-{age}",
            gpu_name="H100",
            price=price,
            currency=currency,
            usd_per_hour=2.0,
            price_age_seconds=age,
        )

    items = [offer("sesterce", 10), offer("sesterce", 11), offer("netmind", 5), offer("netmind", 3600)]
    items.append(offer("neolink", 12, price=14.0, currency="CNY"))
    listing = Listing(items=items, total=len(items))
    brief_offers(listing)
    assert [o.price_age_seconds for o in listing.items] == [None, None, 5, 3600, None]
    assert "Prices read at most 11 s ago (price_age_seconds): sesterce" in listing.notes
    assert "Prices read at most 12 s ago (price_age_seconds): neolink" in listing.notes
    assert [(o.price, o.currency) for o in listing.items][-1] == (14.0, "CNY")  # another currency stays
    assert all(o.price is None for o in listing.items[:4])  # a USD price equal to usd_per_hour: said once
