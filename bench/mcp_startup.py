"""`gpu-mcp --sandbox` start to a `tools/list` answer, vs a bare MCPServer with one tool.

Both run as stdio subprocesses of the SDK's own client with the same Python and SDK; the figure is
the wall time from spawning the process to the `tools/list` answer. Runs are interleaved and the
medians compared, since the machine is noisy. Goal: ratio <= 1.2.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time

from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

QUIET = open(os.devnull, "w")  # the servers' stderr, for the whole run
RUNS = 11
GOAL = 1.2
BARE = """
from mcp.server.mcpserver import MCPServer
server = MCPServer(name="bare")
@server.tool()
def ping(text: str) -> str:
    \"\"\"Answer with the text.\"\"\"
    return text
server.run()
"""


def env(home: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "GPU_TOOLS_HOME": home, "HOME": home}


async def start_to_list(params: StdioServerParameters) -> tuple[float, int]:
    t0 = time.perf_counter()
    async with Client(stdio_client(params, errlog=QUIET)) as client:
        tools = (await client.list_tools()).tools
        elapsed = time.perf_counter() - t0
    return elapsed, len(tools)


async def main() -> None:
    home = tempfile.mkdtemp(prefix="gpu-bench-")
    ours = StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_server", "--sandbox"], env=env(home)
    )
    bare = StdioServerParameters(command=sys.executable, args=["-c", BARE], env=env(home))
    await start_to_list(ours)  # warm the file cache and .pyc files for both
    await start_to_list(bare)
    ours_t, bare_t = [], []
    n_ours = n_bare = 0
    for _ in range(RUNS):
        t, n_ours = await start_to_list(ours)
        ours_t.append(t)
        t, n_bare = await start_to_list(bare)
        bare_t.append(t)
    ours_m, bare_m = statistics.median(ours_t), statistics.median(bare_t)
    ratio = ours_m / bare_m
    print(f"start to tools/list over stdio, median of {RUNS} interleaved runs")
    print(f"  gpu-mcp --sandbox ({n_ours} tools): {ours_m * 1000:.0f} ms")
    print(f"  bare MCPServer ({n_bare} tool): {bare_m * 1000:.0f} ms")
    print(f"  ratio: {ratio:.2f} (goal <= {GOAL}) {'OK' if ratio <= GOAL else 'OVER'}")


if __name__ == "__main__":
    asyncio.run(main())
