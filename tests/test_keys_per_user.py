"""Idempotency keys belong to the user who asked (issue 22, case 4): on an HTTP server with two
users, bob reusing alice's key with the same arguments is asked his own question and gets his own
create and row, never her result; each user's own repeat is a replay of their own first call."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from gpu_tools.journal import SqliteJournal
from gpu_tools.sandbox import SandboxServer
from tests.conftest import mutating_requests
from tests.mcp_helpers import Human, structured
from tests.test_cli import free_port, running

pytestmark = pytest.mark.anyio

TOKENS = {"tok-alice-0123456789": "alice", "tok-bob-0123456789": "bob"}
ALICE, BOB = list(TOKENS)
ARGS = {
    "name": "keyed",
    "model_name": "openai/gpt-oss-20b",
    "flavor_name": "base",
    "gpu_type": "gpu-h100-sxm",
    "idempotency_key": "job-1",
}


@pytest.fixture
def server(sandbox: SandboxServer, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "GPU_TOOLS_HOME": str(tmp_path),
        "NEBIUS_API_KEY": "sandbox-key",
        "NEBIUS_BASE_URL": f"{sandbox.url}/nebius",
        "NEBIUS_GPU_USD_PER_HOUR": json.dumps({"gpu-h100-sxm": 6.0}),
        "GPU_TOOLS_HTTP_TOKENS": json.dumps(TOKENS),
    }
    args = [sys.executable, "-m", "mcp_server", "--transport", "http", "--port", str(port)]
    with running(args, env, url):
        yield url, tmp_path


@asynccontextmanager
async def client(url: str, token: str, human: Human, mode: str) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(60))
    async with (
        http,
        Client(streamable_http_client(url, http_client=http), elicitation_callback=human, mode=mode) as c,
    ):  # type: ignore[arg-type]
        yield c


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_bob_reusing_alices_key_gets_his_own_question_create_and_row(
    server: tuple[str, Path], sandbox: SandboxServer, mode: str
) -> None:
    url, home = server
    alice, bob = Human(), Human()
    async with client(url, ALICE, alice, mode) as a, client(url, BOB, bob, mode) as b:
        hers = structured(await a.call_tool("nebius_create_endpoint", ARGS))
        his = structured(await b.call_tool("nebius_create_endpoint", ARGS))
        hers_again = structured(await a.call_tool("nebius_create_endpoint", ARGS))
        his_again = structured(await b.call_tool("nebius_create_endpoint", ARGS))
    assert (hers["outcome"], his["outcome"]) == ("done", "done")
    assert his["resource"]["resource_id"] != hers["resource"]["resource_id"]
    assert len(alice.messages) == 1 and len(bob.messages) == 1  # bob was asked his own question
    assert hers_again["outcome"] == "replayed" and hers_again["resource"] == hers["resource"]
    assert his_again["outcome"] == "replayed" and his_again["resource"] == his["resource"]
    posts = [r for r in mutating_requests(sandbox) if r["method"] == "POST"]
    assert len(posts) == 2
    journal = SqliteJournal(next(home.rglob("journal.sqlite3")))
    rows: list[Any] = journal.entries(limit=100)[0]
    journal.close()
    assert sorted((r.actor, r.outcome, r.idempotency_key) for r in rows) == [
        ("alice", "ok", "job-1"),
        ("bob", "ok", "job-1"),
    ]
