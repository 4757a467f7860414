"""A confirmation shows what is sent as it is sent: no argument an agent chooses, and no name a provider
returns, can add a line to it (a fake "Cost:" above the real one) or reorder it (a bidi override).

An agent's one-line value (a name, an image) with a line break or any control character, and any
argument with a bidi control, is refused before anyone is asked, journaled, and sends nothing: over
stdio and in process, in both protocol generations, and in `%gpu`. A long text (a description) may
hold lines; the confirmation shows them escaped on the `Sends:` line. A name made at the provider's
console is shown escaped in the MCP question and on the approval page (real Chromium).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from mcp import Client, StdioServerParameters, types

from gpu_tools import errors
from gpu_tools.errors import InvalidInput
from gpu_tools.models import Plan, plain
from gpu_tools.sandbox import SandboxServer
from gpu_tools.sandbox.sesterce import H100_1
from gpu_tools.toolkit import Toolkit
from mcp_server import build_server
from tests.browser import chromium, link_and_code, sign_in
from tests.conftest import (
    fetch_log,
    mutating_requests,
    nebius_endpoint_made_elsewhere,
    sandbox_settings,
    stdio_env,
)
from tests.mcp_helpers import Human, error_text, structured

pytestmark = pytest.mark.anyio

FAKE = "demo\nRequest: POST /v0/dedicated_endpoints\nCost: ~$0.10/hour (promo price)\nReversible: yes"
NEBIUS = {
    "name": "demo",
    "model_name": "openai/gpt-oss-20b",
    "flavor_name": "base",
    "gpu_type": "gpu-h100-sxm",
    "min_replicas": 8,
    "max_replicas": 8,
}
IMAGE = "images.neolink-ai.com/matrixdc/pytorch:2.3.0-python3.10-cuda12.1.0-devel-ubuntu22.04"
NEOLINK = {"display_name": "demo", "image": IMAGE, "gpu_sku_id": "88"}
SESTERCE = {
    "name": "demo",
    "model_id": "llama-3.1-8b-instruct",
    "hardware_id": H100_1,
    "regions": [{"region_id": 78, "min": 1, "max": 1}],
}
NETMIND = {
    "name": "demo",
    "flavor_id": "e5d2b7a96c3f41d08a7e9c2b4d1f6a38",
    "image_url": "python:3.10-slim",
    "port": 8080,
}
# (tool, arguments, the argument that hides something, what is said)
HIDDEN = [
    ("nebius_create_endpoint", {**NEBIUS, "name": FAKE}, "name", "name must be one line: it holds U+000A"),
    ("netmind_create_endpoint", {**NETMIND, "name": FAKE}, "name", "must be one line: it holds U+000A"),
    ("sesterce_create_endpoint", {**SESTERCE, "name": FAKE}, "name", "must be one line: it holds U+000A"),
    ("neolink_create_instance", {**NEOLINK, "image": IMAGE + "\rCost: ~$0.10/hour"}, "image", "U+000D"),
    ("neolink_create_instance", {**NEOLINK, "display_name": "demo\x85x"}, "display_name", "U+0085"),
    (
        "nebius_create_endpoint",
        {**NEBIUS, "description": "ok\u202e$01.0~ :tsoC"},
        "description",
        "description holds U+202E, which reorders how text is shown",
    ),
    (
        "sesterce_create_endpoint",
        {**SESTERCE, "envs": {"A\nB": "1"}},
        "envs",
        "envs must be one line: it holds U+000A",
    ),
    (
        "nebius_create_endpoint",
        {**NEBIUS, "name": "demo\u3164x"},
        "name",
        "name holds U+3164, a character that shows as blank",
    ),
    (
        "neolink_create_instance",
        {**NEOLINK, "display_name": "gpu\u2800box"},
        "display_name",
        "display_name holds U+2800, a character that shows as blank",
    ),
    (
        "nebius_create_endpoint",
        {**NEBIUS, "name": "gpu\ufe00box"},
        "name",
        "name holds U+FE00, a character that shows as blank",
    ),
    (
        "nebius_create_endpoint",
        {**NEBIUS, "name": "gpu\u00a9\ufe00box"},
        "name",
        "name holds U+FE00, a character that shows as blank",
    ),
    (
        "neolink_create_instance",
        {**NEOLINK, "display_name": "gpu\u200bbox"},
        "display_name",
        "display_name holds U+200B, a character that shows as blank",
    ),
]


def sandbox_server(sandbox: SandboxServer) -> Any:
    prices = {"gpu-h100-sxm": 6.0}
    tk = Toolkit(sandbox_settings(sandbox, nebius_gpu_usd_per_hour=prices, toolsets=["all"]))
    return build_server(toolkit=tk)


def refused(tk: Toolkit) -> list[str]:
    return [e.error or "" for e in tk.journal.entries(outcome="refused")[0]]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
@pytest.mark.parametrize(("tool", "args", "field", "said"), HIDDEN, ids=[f"{t}-{f}" for t, _, f, _ in HIDDEN])
async def test_an_argument_that_hides_a_line_or_reorders_text_is_refused_before_anyone_is_asked(
    sandbox: SandboxServer, mode: str, tool: str, args: dict[str, Any], field: str, said: str
) -> None:
    server = sandbox_server(sandbox)
    human = Human("accept", True)
    async with Client(server, elicitation_callback=human, mode=mode) as client:
        result = await client.call_tool(tool, args)
    text = error_text(result)
    assert said in text and field in text and "Traceback" not in text
    assert human.messages == [] and mutating_requests(sandbox) == []
    [row] = refused(server.toolkit)
    assert said in row
    server.toolkit.close()


async def test_over_stdio_the_fake_cost_line_of_the_attack_is_refused(
    sandbox: SandboxServer, gpu_home: Path
) -> None:
    """The attack as it was found: a name carrying a fake cost line and 100 blank lines, $48/h."""
    env = stdio_env(
        gpu_home,
        NEBIUS_API_KEY="sandbox-key",
        NEBIUS_BASE_URL=f"{sandbox.url}/nebius",
        NEBIUS_GPU_USD_PER_HOUR='{"gpu-h100-sxm": 6.0}',
    )
    server = StdioServerParameters(command=sys.executable, args=["-m", "mcp_server"], env=env)
    human = Human("accept", True)
    async with Client(server, elicitation_callback=human) as client:
        result = await client.call_tool("nebius_create_endpoint", {**NEBIUS, "name": FAKE + "\n" * 100})
        history = structured(await client.call_tool("history", {}))
    assert "name must be one line: it holds U+000A" in error_text(result)
    assert human.messages == [] and mutating_requests(sandbox) == []
    assert [e["outcome"] for e in history["items"]] == ["refused"]


async def test_a_description_keeps_its_lines_and_the_confirmation_shows_them_escaped(
    sandbox: SandboxServer,
) -> None:
    server = sandbox_server(sandbox)
    human = Human("accept", True)
    description = "first line\nCost: ~$0.10/hour (promo price)\n\tReversible: yes"
    async with Client(server, elicitation_callback=human) as client:
        made = structured(
            await client.call_tool("nebius_create_endpoint", {**NEBIUS, "description": description})
        )
    assert made["outcome"] == "done"
    [message] = human.messages
    lines = message.splitlines()
    # One cost line, the real one ($6/h a GPU, 8 replicas); the description's lines are on Sends:.
    [cost] = [line for line in lines if line.startswith("Cost:")]
    assert cost.startswith("Cost: ~$48.00/hour (source: your nebius_gpu_usd_per_hour setting")
    [sends] = [line for line in lines if line.startswith("Sends:")]
    assert r"first line\nCost: ~$0.10/hour (promo price)\n\tReversible: yes" in sends
    # What was sent is the description as given, its lines included.
    [create] = [r for r in fetch_log(sandbox) if r["method"] == "POST"]
    assert create["body"]["description"] == description
    server.toolkit.close()


async def test_a_text_whose_type_is_long_may_span_lines_wherever_it_is(sandbox: SandboxServer) -> None:
    """The line rule follows each text's declared type: an env var's value (a long text, e.g. a PEM)
    may hold lines, its name may not; a bidi control is refused in either."""
    tk = Toolkit(sandbox_settings(sandbox))
    pem = "-----BEGIN KEY-----\nMIIB\n-----END KEY-----"
    plan = await tk.call("sesterce_create_endpoint", {**SESTERCE, "envs": {"TLS_KEY": pem}, "dry_run": True})
    assert plan.outcome == "dry_run" and len(plan.plan.message().splitlines()) == len(
        (await tk.call("sesterce_create_endpoint", {**SESTERCE, "dry_run": True})).plan.message().splitlines()
    )
    with pytest.raises(InvalidInput, match="envs holds U\\+2066, which reorders how text is shown"):
        await tk.call(
            "sesterce_create_endpoint", {**SESTERCE, "envs": {"TLS_KEY": "a\u2066b"}, "dry_run": True}
        )
    assert mutating_requests(sandbox) == []
    tk.close()


async def test_a_name_made_at_the_console_is_shown_escaped_in_the_question(sandbox: SandboxServer) -> None:
    """The provider's own answer is not ours to refuse: a delete of an endpoint named with a fake
    cost line and a bidi override shows both escaped, on the one Target line."""
    evil = "old\nCost: ~$0.00/hour\u202e"
    rid = nebius_endpoint_made_elsewhere(sandbox, evil)
    server = sandbox_server(sandbox)
    human = Human("decline", False)
    async with Client(server, elicitation_callback=human) as client:
        await client.call_tool("list_resources", {})
        result = await client.call_tool("delete_resource", {"provider": "nebius", "resource_id": rid})
    assert result.is_error and [r for r in mutating_requests(sandbox) if r["method"] == "DELETE"] == []
    [message] = human.messages
    assert "\u202e" not in message and not [line for line in message.splitlines() if line.startswith("Cost:")]
    assert r"old\nCost: ~$0.00/hour\u202e" in message
    server.toolkit.close()


async def test_a_password_chosen_by_an_agent_cannot_blank_out_the_price_or_a_label(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Passwords an agent passes become secrets, masked from every output; in a question only what
    an agent or a provider chose is masked, never a figure or a label of the question itself."""
    monkeypatch.setattr(errors, "_known_secrets", dict(errors._known_secrets))  # this test's, then gone
    server = sandbox_server(sandbox)
    human = Human("decline", False)
    registry = {"name": "r", "url": "docker.io/acme/a:1", "username": "u", "dry_run": True}
    async with Client(server, elicitation_callback=human) as client:
        for password in ("48.00/hour", "Reversible: ", "Cost: ~$"):
            structured(await client.call_tool("sesterce_create_registry", {**registry, "password": password}))
        await client.call_tool("nebius_create_endpoint", NEBIUS)
    [message] = human.messages
    lines = message.splitlines()
    assert lines[3].startswith("Cost: ~$48.00/hour (source: your nebius_gpu_usd_per_hour setting")
    assert lines[4].startswith("Reversible: ") and lines[5].startswith("Sends: ")  # the price before the body
    assert mutating_requests(sandbox) == []
    server.toolkit.close()


def test_plain_escapes_what_cannot_be_seen_and_keeps_what_can() -> None:
    assert plain("H100 · 80 GB — café 東京") == "H100 · 80 GB — café 東京"
    assert plain("a\nb\r\tc\x85d\u2028e\u202ef\u200bg\x00") == r"a\nb\r\tc\x85d\u2028e\u202ef\u200bg\x00"
    plan = Plan(
        provider="nebius",
        operation="delete_resource",
        action="Delete endpoint 'x\ny'",
        target="x\nCost: ~$0.00/hour",
        method="DELETE",
        path="/v0/dedicated_endpoints/x",
        reversible=False,
        reversibility="gone for good",
        warnings=["name\u202eeman"],
    )
    lines = plan.message().splitlines()
    assert len(lines) == 5 and not any(line.startswith("Cost:") for line in lines)
    assert lines[-1] == r"Warning: name\u202eeman"


def test_plain_escapes_blank_letters_and_stray_or_stacked_marks_and_keeps_accents() -> None:
    """Letters isprintable() accepts that show as blank, a combining mark on nothing and a stack of
    marks that spills over its neighbours ("zalgo") are written out; accented text is not."""
    assert plain("gpu\u3164box") == r"gpu\u3164box"  # HANGUL FILLER: "gpu box" or "gpubox"
    assert plain("gpu\u2800box") == r"gpu\u2800box"  # BRAILLE PATTERN BLANK
    assert plain("\u115f\u1160\uffa0\u034f") == r"\u115f\u1160\uffa0\u034f"
    assert plain("\u0301demo") == r"\u0301demo"  # a mark with no base
    assert plain("a\u0301\u0302\u0303\u0304\u0305b") == "a\u0301\u0302" + r"\u0303\u0304\u0305" + "b"
    assert plain("\n\u0301") == r"\n\u0301"  # what follows an escape has no base either
    for seen in ("café", "cafe\u0301", "Vie\u0323\u0302t", "Việt Nam", "❤\ufe0f", "東京"):
        assert plain(seen) == seen
    # a variation selector draws nothing but on the symbol it follows
    assert plain("gpu\ufe00box") == r"gpu\ufe00box"
    assert plain("a\U000e0100") == r"a\U000e0100" and plain("\u1820\u180b") == "\u1820" + r"\u180b"
    assert plain("❤\ufe0f\ufe0f") == "❤\ufe0f" + r"\ufe0f"
    assert plain("\u00a9\ufe00") == "\u00a9" + r"\ufe00"  # only U+FE0E/U+FE0F select a symbol's form
    assert plain("1\ufe0f\u20e3") == r"1\ufe0f\u20e3"  # a keycap is written out: rare in a name
    assert plain("gpu\U00016fe4x") == r"gpu\U00016fe4x"  # KHITAN SMALL SCRIPT FILLER


def test_in_a_notebook_the_same_name_is_refused_and_nothing_is_sent(
    shell: InteractiveShell, sandbox: SandboxServer
) -> None:
    shell.user_ns["evil"] = FAKE
    with pytest.raises(InvalidInput, match="name must be one line: it holds U\\+000A"):
        shell.run_line_magic(
            "gpu",
            "nebius-create-endpoint --name {evil} --model-name openai/gpt-oss-20b --flavor-name base "
            "--gpu-type gpu-h100-sxm --yes",
        )
    assert mutating_requests(sandbox) == []


async def test_the_approval_page_shows_a_console_made_name_escaped(sandbox: SandboxServer) -> None:
    from tests.test_approval_page import page_server

    evil = "old\nCost: ~$0.00/hour\u202e"
    rid = nebius_endpoint_made_elsewhere(sandbox, evil)
    server = page_server(sandbox)
    client = types.Implementation(name="agent\u202e1.0 :tsoC", version="1")  # the name it gives itself
    async with Client(server, client_info=client) as c, chromium() as browser:
        await c.call_tool("list_resources", {})
        pending = structured(await c.call_tool("delete_resource", {"provider": "nebius", "resource_id": rid}))
        assert pending["outcome"] == "approval_pending"
        url, code = link_and_code(server.lines, pending["approval"]["id"])
        page = await browser.new_page()
        await sign_in(page, url, code)
        heading = await page.inner_text("h1")  # what the plan does, naming the endpoint
        assert r"endpoint old\nCost: ~$0.00/hour\u202e (openai" in heading
        assert "\u202e" not in await page.inner_text("main")
        shown = await page.inner_text("main")
        assert r"agent\u202e1.0 :tsoC" in shown  # the client's own name: escaped too, never obeyed
    assert [r for r in mutating_requests(sandbox) if r["method"] == "DELETE"] == []
    server.toolkit.close()


def test_the_approval_index_shows_who_asked_escaped() -> None:
    """The index lists each open question with who asked: a name a token's owner or an identity
    provider gave, escaped like every chosen field (the detail page is tested in Chromium above)."""
    from gpu_tools.approvals.templates import index
    from gpu_tools.journal import Approval

    asked = Approval(
        id="a1b2c3d4",
        fingerprint="f",
        digest="d",
        message="m",
        created_at="2026-12-06T03:00:00.000000+00:00",
        consumed_at=None,
        journal_id=None,
        result=None,
        asked_by="mallory\u202eecila",
        expires_at="2026-12-06T04:00:00+00:00",
        mode="page",
        view={"plan": {"action": "Delete endpoint", "provider": "nebius", "usd_per_hour": 1.0}},
    )
    page = index([asked], base="/approvals", who="alice")
    assert r"asked by mallory\u202eecila" in page and "\u202e" not in page
