"""`gpu-mcp --sandbox` start to a `tools/list` answer, vs a bare MCPServer with one tool.

Both run as stdio subprocesses of the SDK's own client with the same Python and SDK; the figure is
the wall time from spawning the process to the `tools/list` answer. Runs are interleaved, each run of
gpu-mcp paired with the bare run after it, and the median of the pairs' ratios is the figure (the
ratio of the medians is printed too), since the machine is noisy. Goal: ratio <= 1.1.
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
RUNS = 21
GOAL = 1.1
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
    # Each run of ours is paired with the bare run right after it: a slow spell of the machine
    # falls on both, so the median of the pairs' ratios moves less than the ratio of the medians.
    ratio = statistics.median(o / b for o, b in zip(ours_t, bare_t, strict=True))
    print(f"start to tools/list over stdio, median of {RUNS} interleaved runs")
    q = lambda xs: statistics.quantiles(xs, n=4)  # noqa: E731
    print(
        f"  gpu-mcp --sandbox ({n_ours} tools): {ours_m * 1000:.0f} ms (quartiles {q(ours_t)[0] * 1000:.0f}-{q(ours_t)[2] * 1000:.0f})"
    )
    print(
        f"  bare MCPServer ({n_bare} tool): {bare_m * 1000:.0f} ms (quartiles {q(bare_t)[0] * 1000:.0f}-{q(bare_t)[2] * 1000:.0f})"
    )
    print(f"  ratio of the medians: {ours_m / bare_m:.2f}")
    print(f"  median of the paired ratios: {ratio:.2f} (goal <= {GOAL}) {'OK' if ratio <= GOAL else 'OVER'}")


if __name__ == "__main__":
    asyncio.run(main())
