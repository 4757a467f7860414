"""A team server: several `gpu-mcp --transport http` processes on one PostgreSQL journal.

Each server is a real process with its own home directory; they share only the journal's database
URL, the confirmation key and the tokens, and talk to one sandbox (the test's, through provider env
vars). Clients are the SDK's own `mcp.Client` over streamable HTTP, answering every confirmation yes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from gpu_tools.journal import PostgresJournal
from gpu_tools.sandbox import SandboxServer
from gpu_tools.toolkit import Toolkit
from tests.conftest import mutating_requests, sandbox_settings
from tests.mcp_helpers import Human, error_text, structured
from tests.test_cli import free_port, running

pytestmark = pytest.mark.anyio

CREATE = "nebius_create_endpoint"
ARGS = {"model_name": "openai/gpt-oss-20b", "flavor_name": "base", "gpu_type": "gpu-h100-sxm"}
PRICES = {"gpu-h100-sxm": 6.0}
TOKENS = {"tok-alice-0123456789": "alice", "tok-bob-0123456789": "bob"}
ALICE, BOB = list(TOKENS)


@dataclass
class Team:
    urls: list[str]
    journal_url: str
    price: float


def server_env(sandbox: SandboxServer, home: Path, journal_url: str, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "GPU_TOOLS_HOME": str(home),
        "NEBIUS_API_KEY": "sandbox-key",
        "NEBIUS_BASE_URL": f"{sandbox.url}/nebius",
        "NEBIUS_GPU_USD_PER_HOUR": json.dumps(PRICES),
        "GPU_TOOLS_JOURNAL_URL": journal_url,
        "GPU_TOOLS_HTTP_TOKENS": json.dumps(TOKENS),
        "GPU_TOOLS_HTTP_STATE_KEY": "a-team-secret-of-at-least-32-characters",
        **extra,
    }


def price_of_one(sandbox: SandboxServer) -> float:
    probe = Toolkit(sandbox_settings(sandbox, nebius_gpu_usd_per_hour=PRICES))
    try:
        result = anyio.run(lambda: probe.call(CREATE, {**ARGS, "name": "p", "dry_run": True}))
        plan = result.plan  # type: ignore[attr-defined]
        return float(plan.usd_per_hour_max or plan.usd_per_hour)
    finally:
        probe.close()


@pytest.fixture
def team(sandbox: SandboxServer, pg_url: str, tmp_path: Path) -> Iterator[Team]:
    """Two gpu-mcp HTTP servers on one PostgreSQL journal, with a total cap that fits five creates."""
    price = price_of_one(sandbox)
    cap = f"{price * 5.5:.4f}"
    urls = []
    with ExitStack() as stack:
        for n in range(2):
            port = free_port()
            url = f"http://127.0.0.1:{port}/mcp"
            env = server_env(sandbox, tmp_path / f"server{n}", pg_url, GPU_TOOLS_MAX_TOTAL_USD_PER_HOUR=cap)
            args = [sys.executable, "-m", "mcp_server", "--transport", "http", "--port", str(port)]
            stack.enter_context(running(args, env, url))
            urls.append(url)
        yield Team(urls, pg_url, price)


class RoundRobin(httpx2.AsyncBaseTransport):
    """A load balancer in the client: each tools/call goes to the next server in turn."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = [httpx2.URL(u) for u in urls]
        self.inner = httpx2.AsyncHTTPTransport()
        self.calls: list[int] = []  # the server index each tools/call went to

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        await request.aread()
        try:
            method = json.loads(request.content).get("method")
        except (ValueError, AttributeError):
            method = None
        index = 0
        if method == "tools/call":
            index = len(self.calls) % len(self.urls)
            self.calls.append(index)
        target = self.urls[index]
        request.url = request.url.copy_with(port=target.port)
        request.headers["host"] = f"{target.host}:{target.port}"
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@asynccontextmanager
async def client(
    url: str, token: str, transport: httpx2.AsyncBaseTransport | None = None
) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {token}"}, transport=transport, timeout=httpx2.Timeout(60)
    )
    async with http, Client(streamable_http_client(url, http_client=http), elicitation_callback=Human()) as c:
        yield c


def creates(sandbox: SandboxServer) -> list[dict[str, Any]]:
    return [r for r in mutating_requests(sandbox) if r["provider"] == "nebius" and r["method"] == "POST"]


def journal_rows(url: str) -> list[Any]:
    journal = PostgresJournal(url)
    try:
        return journal.entries(limit=1000)[0]
    finally:
        journal.close()


# ---- acceptance 1: one cap across two servers ------------------------------------------------------------
async def test_forty_concurrent_creates_across_two_servers_pass_a_cap_that_fits_five_exactly_five_times(
    team: Team, sandbox: SandboxServer
) -> None:
    httpx.post(
        f"{sandbox.url}/_sandbox/faults", json={"provider": "nebius", "latency": 0.3, "methods": ["POST"]}
    ).raise_for_status()
    results: list[types.CallToolResult | None] = [None] * 40
    async with client(team.urls[0], ALICE) as a, client(team.urls[1], BOB) as b:

        async def create(i: int) -> None:
            results[i] = await (a if i % 2 == 0 else b).call_tool(CREATE, {**ARGS, "name": f"t{i}"})

        async with anyio.create_task_group() as tg:
            for i in range(40):
                tg.start_soon(create, i)

    done = [r for r in results if r is not None and not r.is_error]
    refused = [error_text(r) for r in results if r is not None and r.is_error]
    assert len(done) == 5 and len(refused) == 35
    assert all("max_total_usd_per_hour" in text and "Nothing was sent" in text for text in refused)
    assert len(creates(sandbox)) == 5
    rows = journal_rows(team.journal_url)
    assert len(rows) == 40
    assert sorted(r.outcome for r in rows) == ["ok"] * 5 + ["refused"] * 35
    assert {r.actor for r in rows} == {"alice", "bob"}
    assert all(r.confirmed_by == r.actor for r in rows if r.outcome == "ok")


# ---- acceptance 2: a confirmation asked by one server, answered through the other ------------------------
async def test_a_confirmation_asked_on_one_server_is_answered_on_the_other_and_sends_once(
    team: Team, sandbox: SandboxServer
) -> None:
    balancer = RoundRobin(team.urls)
    args = {**ARGS, "name": "across"}
    async with client(team.urls[0], ALICE, balancer) as c:
        first = await c.session.call_tool(CREATE, args, allow_input_required=True)
        assert isinstance(first, types.InputRequiredResult)
        [key] = first.input_requests
        yes = {key: types.ElicitResult(action="accept", content={"confirm": True})}

        async def answer() -> Any:
            return await c.session.call_tool(
                CREATE,
                args,
                input_responses=yes,
                request_state=first.request_state,
                allow_input_required=True,
            )

        second, third = await answer(), await answer()
    assert balancer.calls == [0, 1, 0]  # asked by server 0, answered by 1, the answer replayed to 0
    assert isinstance(second, types.CallToolResult) and isinstance(third, types.CallToolResult)
    assert structured(second)["outcome"] == "done" and structured(third)["outcome"] == "replayed"
    assert structured(third)["resource"]["resource_id"] == structured(second)["resource"]["resource_id"]
    assert len(creates(sandbox)) == 1
    [row] = journal_rows(team.journal_url)
    assert (row.outcome, row.actor, row.confirmed_by) == ("ok", "alice", "alice")

    # Bob cannot answer a question asked of Alice, on either server: the sealed state names her.
    for url in team.urls:
        async with client(url, BOB) as c:
            with pytest.raises(MCPError, match="Invalid or expired requestState"):
                await c.session.call_tool(
                    CREATE,
                    args,
                    input_responses=yes,
                    request_state=first.request_state,
                    allow_input_required=True,
                )
    assert len(creates(sandbox)) == 1


async def test_history_filters_by_user(team: Team, sandbox: SandboxServer) -> None:
    async with client(team.urls[0], ALICE) as a, client(team.urls[1], BOB) as b:
        structured(await a.call_tool(CREATE, {**ARGS, "name": "of-alice"}))
        structured(await b.call_tool(CREATE, {**ARGS, "name": "of-bob"}))
        mine = structured(await b.call_tool("history", {"user": "alice"}))
        everyone = structured(await a.call_tool("history", {}))
    assert [i["target"] for i in mine["items"]] == ["of-alice"] and mine["total"] == 1
    assert [i["actor"] for i in everyone["items"]] == ["bob", "alice"]
    assert [i["confirmed_by"] for i in everyone["items"]] == ["bob", "alice"]


async def test_two_users_asking_for_the_same_thing_at_once_each_answer_their_own_question(
    team: Team, sandbox: SandboxServer
) -> None:
    args = {**ARGS, "name": "same"}
    async with client(team.urls[0], ALICE) as a, client(team.urls[1], BOB) as b:
        asked = [await c.session.call_tool(CREATE, args, allow_input_required=True) for c in (a, b)]
        answers = []
        for c, question in zip((a, b), asked, strict=True):
            assert isinstance(question, types.InputRequiredResult)
            [key] = question.input_requests
            yes = {key: types.ElicitResult(action="accept", content={"confirm": True})}
            answers.append(
                await c.session.call_tool(
                    CREATE,
                    args,
                    input_responses=yes,
                    request_state=question.request_state,
                    allow_input_required=True,
                )
            )
    assert [structured(r)["outcome"] for r in answers] == ["done", "done"]  # type: ignore[arg-type]
    assert len(creates(sandbox)) == 2
    rows = journal_rows(team.journal_url)
    assert sorted((r.actor, r.confirmed_by) for r in rows) == [("alice", "alice"), ("bob", "bob")]


def test_gpu_mcp_and_gpu_guard_say_in_one_line_when_the_journal_database_is_unreachable(
    tmp_path: Path,
) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "GPU_TOOLS_HOME": str(tmp_path),
        "GPU_TOOLS_JOURNAL_URL": f"postgresql://gpu:pw-never-shown@127.0.0.1:{free_port()}/journal",
    }
    for args in (["-m", "mcp_server", "--transport", "http"], ["-m", "gpu_tools.guard", "--once"]):
        run = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=60)
        assert run.returncode != 0
        assert "cannot reach the journal database postgresql://gpu:***@127.0.0.1" in run.stderr
        assert "Traceback" not in run.stderr and "pw-never-shown" not in run.stderr
