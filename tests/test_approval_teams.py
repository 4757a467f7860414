"""Four eyes on a team's HTTP server: the approval page under /approvals/ of `gpu-mcp --transport http`,
approvers signing in with their own bearer token, `approval_quorum` distinct approvers, and
`approval_separate_requester` (the requester's own yes does not count). Real Chromium, a real
server process, counting what reached the sandbox."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from gpu_tools.sandbox import SandboxServer
from tests.browser import chromium, decide, sign_in
from tests.conftest import mutating_requests
from tests.mcp_helpers import structured
from tests.test_cli import free_port, running

pytestmark = pytest.mark.anyio

TOKENS = {"tok-alice-0123456789": "alice", "tok-bob-0123456789": "bob"}
ALICE, BOB = list(TOKENS)
ARGS = {"name": "team", "model_name": "openai/gpt-oss-20b", "flavor_name": "base", "gpu_type": "gpu-h100-sxm"}


@contextmanager
def team_server(sandbox: SandboxServer, home: Path, **policy: str) -> Iterator[str]:
    """`gpu-mcp --transport http` with two users; yields the MCP URL (the page is on the same port)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "GPU_TOOLS_HOME": str(home),
        "NEBIUS_API_KEY": "sandbox-key",
        "NEBIUS_BASE_URL": f"{sandbox.url}/nebius",
        "NEBIUS_GPU_USD_PER_HOUR": json.dumps({"gpu-h100-sxm": 6.0}),
        "GPU_TOOLS_HTTP_TOKENS": json.dumps(TOKENS),
        "GPU_TOOLS_APPROVAL_WAIT": "0s",
        **{f"GPU_TOOLS_{k.upper()}": v for k, v in policy.items()},
    }
    args = [
        sys.executable,
        "-m",
        "mcp_server",
        "--transport",
        "http",
        "--port",
        str(port),
        "--approval",
        "page",
    ]
    with running(args, env, url):
        yield url


@asynccontextmanager
async def as_user(url: str, token: str) -> AsyncIterator[Client]:
    """An MCP client of `token`'s user that cannot show a form (it gets the page's link)."""
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(60))
    async with http, Client(streamable_http_client(url, http_client=http)) as c:  # type: ignore[arg-type]
        yield c


async def signed_in(browser: Any, url: str, token: str) -> Any:
    page = await (await browser.new_context()).new_page()
    await sign_in(page, url, token)
    return page


def creates(sandbox: SandboxServer) -> list[dict]:
    return [r for r in mutating_requests(sandbox) if r["method"] == "POST"]


async def test_the_requester_cannot_approve_their_own_plan_with_separation(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    with team_server(sandbox, tmp_path, approval_separate_requester="true") as url:
        async with as_user(url, ALICE) as alice, chromium() as browser:
            link = structured(await alice.call_tool("nebius_create_endpoint", ARGS))["approval"]
            assert link["url"].startswith(
                url.removesuffix("/mcp").replace("127.0.0.1", "localhost") + "/approvals/"
            )
            own = await signed_in(browser, link["url"], ALICE)
            assert "alice" in await own.inner_text("header")
            refused = await decide(own, "approve")
            assert refused.status == 403 and "another approver" in await own.inner_text("main")
            still = structured(await alice.call_tool("nebius_create_endpoint", ARGS))
            assert still["outcome"] == "approval_pending" and creates(sandbox) == []

            other = await signed_in(browser, link["url"], BOB)
            assert (await decide(other, "approve")).status == 303
            done = structured(await alice.call_tool("nebius_create_endpoint", ARGS))
            history = structured(await alice.call_tool("history", {}))
    assert done["outcome"] == "done" and len(creates(sandbox)) == 1
    sent = [e for e in history["items"] if e["outcome"] == "ok"]
    assert len(sent) == 1 and sent[0]["actor"] == "alice" and sent[0]["confirmed_by"] == "bob (page)"


async def test_a_quorum_of_two_needs_two_distinct_approvers(sandbox: SandboxServer, tmp_path: Path) -> None:
    with team_server(sandbox, tmp_path, approval_quorum="2") as url:
        async with as_user(url, ALICE) as alice, chromium() as browser:
            link = structured(await alice.call_tool("nebius_create_endpoint", ARGS))["approval"]
            first = await signed_in(browser, link["url"], ALICE)
            assert (await decide(first, "approve")).status == 303
            assert "Waiting" in await first.inner_text("#status")  # one of two
            again = await first.request.post(
                link["url"] + "/decide",
                form={"decision": "approve", "csrf": "x"},
                headers={"Origin": link["url"].split("/approvals/")[0]},
            )
            assert again.status == 403  # not even a second try with a forged form
            pending = structured(await alice.call_tool("nebius_create_endpoint", ARGS))
            assert pending["outcome"] == "approval_pending" and creates(sandbox) == []

            second = await signed_in(browser, link["url"], BOB)
            assert "alice: approved" in await second.inner_text("main")
            assert (await decide(second, "approve")).status == 303
            assert "Approved by alice, bob" in await second.inner_text("#status")
            done = structured(await alice.call_tool("nebius_create_endpoint", ARGS))
            history = structured(await alice.call_tool("history", {}))
    assert done["outcome"] == "done" and len(creates(sandbox)) == 1
    assert [e["confirmed_by"] for e in history["items"] if e["outcome"] == "ok"] == ["alice, bob (page)"]
