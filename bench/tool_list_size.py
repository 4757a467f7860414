"""Size of `tools/list` with all four providers configured and the default tool sets.

Prints the wire size (the JSON-RPC result as the server sends it) and what a model reads (names,
titles, descriptions and input schemas), against the budgets of 60 KB and 24 KB.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

from mcp import Client
from mcp.types import ListToolsResult

from gpu_tools.settings import Settings
from mcp_server import build_server

WIRE_BUDGET = 60 * 1024
READ_BUDGET = 24 * 1024


def compact(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


async def measure(toolsets: list[str] | None) -> tuple[int, int, int, int]:
    settings = Settings(toolsets=toolsets).for_sandbox("http://127.0.0.1:9")  # nothing is called
    async with Client(build_server(settings)) as client:
        result: ListToolsResult = await client.list_tools()
    wire = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    read = [
        {k: t[k] for k in ("name", "title", "description", "inputSchema") if k in t} for t in wire["tools"]
    ]
    outputs = sum(compact(t.get("outputSchema", {})) for t in wire["tools"])
    return len(wire["tools"]), compact(wire), compact(read), outputs


async def main() -> None:
    os.environ["GPU_TOOLS_HOME"] = tempfile.mkdtemp(prefix="gpu-bench-")
    n, wire, read, outputs = await measure(None)
    print("tools/list, all four providers configured, default tool sets")
    print(f"  tools: {n}")
    print(
        f"  wire size: {wire / 1024:.1f} KB (budget {WIRE_BUDGET / 1024:.0f} KB) {'OK' if wire <= WIRE_BUDGET else 'OVER'}"
    )
    print(
        f"  what a model reads (names, titles, descriptions, input schemas): {read / 1024:.1f} KB "
        f"(budget {READ_BUDGET / 1024:.0f} KB) {'OK' if read <= READ_BUDGET else 'OVER'}"
    )
    print(f"  of which output schemas: {outputs / 1024:.1f} KB")
    n, wire, read, outputs = await measure(["all"])
    print("tools/list, every tool set (--toolsets all)")
    print(f"  tools: {n}, wire size: {wire / 1024:.1f} KB, what a model reads: {read / 1024:.1f} KB")


if __name__ == "__main__":
    asyncio.run(main())
