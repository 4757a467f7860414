"""A session and a question belong to the user whose token opened them, over real HTTP.

One `gpu-mcp --transport http` process with two users' tokens and the test's sandbox. Bob holds a
valid token of his own and everything of alice's that travels on the wire (her `mcp-session-id`, the id
of the question on her stream, her sealed `requestState`): none of it lets him answer her question,
stream from her session or end it, and only alice's own yes sends her create, once.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from gpu_tools.journal import Journal
from gpu_tools.sandbox import SandboxServer
from tests.conftest import mutating_requests
from tests.mcp_helpers import Human, structured
from tests.test_cli import free_port, running

pytestmark = pytest.mark.anyio

CREATE = "nebius_create_endpoint"
ARGS = {
    "name": "of-alice",
    "model_name": "openai/gpt-oss-20b",
    "flavor_name": "base",
    "gpu_type": "gpu-h100-sxm",
}
TOKENS = {"tok-alice-0123456789": "alice", "tok-bob-0123456789": "bob"}
ALICE, BOB = list(TOKENS)
YES = {"action": "accept", "content": {"confirm": True}}


class Server:
    def __init__(self, url: str, home: Path) -> None:
        self.url, self.home = url, home

    def rows(self) -> list[Any]:
        journal = Journal.open(self.home / "journal.sqlite3")
        try:
            return journal.entries(limit=100)[0]
        finally:
            journal.close()


@pytest.fixture
def server(sandbox: SandboxServer, tmp_path: Path) -> Iterator[Server]:
    home = tmp_path / "server"
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
    }
    with running([sys.executable, "-m", "mcp_server", "--transport", "http", "--port", str(port)], env, url):
        yield Server(url, home)


def creates(sandbox: SandboxServer) -> list[dict[str, Any]]:
    return [r for r in mutating_requests(sandbox) if r["method"] == "POST"]


def bob_on(session_id: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {BOB}",
        "mcp-session-id": session_id,
        "mcp-protocol-version": "2025-11-25",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
    }


# ---- 2025-11-25: a session is its opener's ---------------------------------------------------------------
async def test_bob_cannot_answer_stream_from_or_end_alices_session(
    server: Server, sandbox: SandboxServer
) -> None:
    sessions: list[str] = []

    async def remember(response: httpx2.Response) -> None:
        if "mcp-session-id" in response.headers:
            sessions.append(response.headers["mcp-session-id"])

    tried: dict[str, int] = {}

    async def alice(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        # Alice's question is open on her stream; bob has her session id and the question's id.
        headers = bob_on(sessions[-1])
        async with httpx.AsyncClient(timeout=10) as bob:
            answer = {"jsonrpc": "2.0", "id": context.request_id, "result": YES}
            tried["answer"] = (await bob.post(server.url, json=answer, headers=headers)).status_code
            call = {
                "jsonrpc": "2.0",
                "id": 99,
                "method": "tools/call",
                "params": {"name": CREATE, "arguments": ARGS},
            }
            tried["call"] = (await bob.post(server.url, json=call, headers=headers)).status_code
            async with bob.stream("GET", server.url, headers=headers) as stream:
                tried["stream"] = stream.status_code
            tried["end"] = (await bob.delete(server.url, headers=headers)).status_code
        assert creates(sandbox) == []  # nothing of bob's reached the provider
        return types.ElicitResult(**YES)  # type: ignore[arg-type]

    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {ALICE}"}, event_hooks={"response": [remember]}, timeout=60
    )
    transport = streamable_http_client(server.url, http_client=http)
    async with http, Client(transport, elicitation_callback=alice, mode="legacy") as client:
        made = structured(await client.call_tool(CREATE, ARGS))
        # Her session outlived bob's DELETE.
        assert structured(await client.call_tool("history", {}))["total"] == 2  # hers and bob's refusal

    assert tried == {"answer": 404, "call": 404, "stream": 404, "end": 404}
    assert made["outcome"] == "done" and len(creates(sandbox)) == 1
    done, refused = server.rows()  # newest first
    assert (done.outcome, done.actor, done.confirmed_by) == ("ok", "alice", "alice")
    assert (refused.outcome, refused.actor, refused.confirmed_by) == ("refused", "bob", None)
    assert "another user's token" in (refused.error or "")


# ---- 2026-07-28: a question is sealed for its asker ------------------------------------------------------
async def test_bob_cannot_answer_alices_question_and_his_try_is_journaled(
    server: Server, sandbox: SandboxServer
) -> None:
    def connect(token: str) -> tuple[httpx2.AsyncClient, Client]:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
        return http, Client(
            streamable_http_client(server.url, http_client=http), elicitation_callback=Human()
        )

    alice_http, alice = connect(ALICE)
    bob_http, bob = connect(BOB)
    async with alice_http, alice, bob_http, bob:
        question = await alice.session.call_tool(CREATE, ARGS, allow_input_required=True)
        assert isinstance(question, types.InputRequiredResult)
        [key] = question.input_requests
        yes = {key: types.ElicitResult(**YES)}  # type: ignore[arg-type]
        with pytest.raises(MCPError, match="Invalid or expired requestState"):
            await bob.session.call_tool(
                CREATE,
                ARGS,
                input_responses=yes,
                request_state=question.request_state,
                allow_input_required=True,
            )
        assert creates(sandbox) == []
        [refused] = server.rows()
        assert (refused.outcome, refused.actor) == ("refused", "bob") and "requestState" in (
            refused.error or ""
        )

        answered = await alice.session.call_tool(
            CREATE, ARGS, input_responses=yes, request_state=question.request_state, allow_input_required=True
        )
    assert isinstance(answered, types.CallToolResult) and structured(answered)["outcome"] == "done"
    assert len(creates(sandbox)) == 1
    done, _ = server.rows()
    assert (done.outcome, done.actor, done.confirmed_by) == ("ok", "alice", "alice")
