"""A read tool over stdio vs the raw GET it makes: the server-side overhead per call.

`list_resources provider=nebius` makes one GET to the provider (the sandbox here, holding a few
endpoints). Three figures, medians of calls interleaved one by one:
- the raw GET with httpx from this process;
- the read tool through `gpu-mcp` over stdio;
- a bare MCPServer tool over stdio that makes the same raw GET and returns its JSON (same SDK,
  same transport): the cost of stdio and JSON-RPC without our server.
Both servers are driven with plain JSON-RPC lines (initialize, then tools/call), so no client-side
work (the SDK client validates every structured result against the tool's output schema) is in the
figures. The server-side overhead is the read tool minus the bare tool. Goal: at most 1 ms per call.

The sandbox runs as a process of its own (`gpu-sandbox`), so its work never competes with this
driver's event loop for the interpreter lock: every process in the figures is one the user would run.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from asyncio.subprocess import PIPE
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent.parent))

from _common import sandbox_process

from gpu_tools.models import Plan
from gpu_tools.settings import Settings
from gpu_tools.toolkit import Toolkit

CALLS = 1000
GOAL_MS = 1.0
ENDPOINTS = 3
BARE = """
import os, httpx
from mcp.server.mcpserver import MCPServer
server = MCPServer(name="bare")
client = httpx.AsyncClient()
@server.tool()
async def raw_get() -> str:
    \"\"\"The same GET, answered as text.\"\"\"
    answer = await client.get(os.environ["URL"], headers={"Authorization": "Bearer " + os.environ["KEY"]})
    return answer.text
server.run()
"""


class Stdio:
    """An MCP server process spoken to in plain JSON-RPC lines (protocol 2025-11-25)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.next_id = 0

    @classmethod
    async def start(cls, command: list[str], env: dict[str, str]) -> Stdio:
        proc = await asyncio.create_subprocess_exec(
            *command, env=env, stdin=PIPE, stdout=PIPE, stderr=asyncio.subprocess.DEVNULL, limit=2**24
        )
        server = cls(proc)
        params = {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"},
        }
        await server.request("initialize", params)
        await server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return server

    async def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        await self.proc.stdin.drain()

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        await self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        assert self.proc.stdout is not None
        while True:
            message = json.loads(await self.proc.stdout.readline())
            if message.get("id") == self.next_id:
                return message["result"]

    async def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return await self.request("tools/call", {"name": name, "arguments": arguments})

    async def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        await self.proc.wait()


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Yes:
    async def confirm(self, plan: Plan) -> bool:
        return True


async def median_ms(fn, calls: int = CALLS) -> float:
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


async def main() -> None:
    home = tempfile.mkdtemp(prefix="gpu-bench-")
    os.environ["GPU_TOOLS_HOME"] = home
    sandbox, url = await sandbox_process("--api-key", "sandbox-key")
    base = f"{url}/nebius"
    tk = Toolkit(Settings(nebius_api_key="sandbox-key", nebius_base_url=base, nebius_inference_base_url=base))
    for i in range(ENDPOINTS):
        args = {
            "name": f"bench-{i}",
            "model_name": "openai/gpt-oss-20b",
            "flavor_name": "base",
            "gpu_type": "gpu-h100-sxm",
            "gpu_count": 1,
        }
        await tk.call("nebius_create_endpoint", args, confirmer=Yes())
    await tk.aclose()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "GPU_TOOLS_HOME": home,
        "HOME": home,
        "NEBIUS_API_KEY": "sandbox-key",
        "NEBIUS_BASE_URL": base,
        "NEBIUS_INFERENCE_BASE_URL": base,
        "URL": f"{base}/v0/dedicated_endpoints",
        "KEY": "sandbox-key",
    }
    ours = [sys.executable, "-m", "mcp_server"]
    bare = [sys.executable, "-c", BARE]
    gpu, plain = await Stdio.start(ours, env), await Stdio.start(bare, env)
    try:
        async with httpx.AsyncClient() as http:

            async def raw() -> None:
                (
                    await http.get(env["URL"], headers={"Authorization": "Bearer sandbox-key"})
                ).raise_for_status()

            async def tool() -> None:
                result = await gpu.call("list_resources", {"provider": "nebius"})
                assert not result.get("isError") and len(result["structuredContent"]["items"]) == ENDPOINTS

            async def bare_tool() -> None:
                assert not (await plain.call("raw_get", {})).get("isError")

            for fn in (raw, tool, bare_tool):  # warm up connections and first-call imports
                await median_ms(fn, 20)
            # Interleaved call by call, so a slow spell of the machine falls on all three alike; the
            # overhead is the median of the per-round differences, which such spells cancel out of.
            # The order rotates (raw tool bare, tool bare raw, bare raw tool): no process is ever
            # called twice in a row, which would find its caches warm and flatter it.
            raws, tools, bares = [], [], []
            cpu0 = {p: cpu_seconds(p) for p in (gpu.proc.pid, plain.proc.pid)}
            for i in range(CALLS):
                order = [(raw, raws), (tool, tools), (bare_tool, bares)]
                for fn, times in order[i % 3 :] + order[: i % 3]:
                    t0 = time.perf_counter()
                    await fn()
                    times.append((time.perf_counter() - t0) * 1000)
            cpu = {p: (cpu_seconds(p) - t) / CALLS * 1000 for p, t in cpu0.items()}
        raw_ms, tool_ms, bare_ms = (statistics.median(x) for x in (raws, tools, bares))
        overhead = statistics.median(t - b for t, b in zip(tools, bares, strict=True))
        print(f"list_resources provider=nebius ({ENDPOINTS} endpoints), medians of {CALLS} calls each")
        print(f"  raw GET from this process: {raw_ms:.2f} ms")
        print(
            f"  read tool through gpu-mcp over stdio: {tool_ms:.2f} ms (ratio to the raw GET {tool_ms / raw_ms:.1f}x)"
        )
        print(f"  bare MCPServer tool making the same GET over stdio: {bare_ms:.2f} ms")
        print(
            f"  server CPU per call (all threads, /proc): gpu-mcp {cpu[gpu.proc.pid]:.2f} ms, "
            f"bare {cpu[plain.proc.pid]:.2f} ms, difference {cpu[gpu.proc.pid] - cpu[plain.proc.pid]:.2f} ms"
        )
        print(
            f"  server-side overhead: {overhead:.2f} ms per call (goal <= {GOAL_MS:.0f} ms) "
            f"{'OK' if overhead <= GOAL_MS else 'OVER'}"
        )
    finally:
        await gpu.close()
        await plain.close()
        tk.close()
        sandbox.terminate()
        await sandbox.wait()


if __name__ == "__main__":
    asyncio.run(main())
