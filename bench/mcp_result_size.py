"""`list_offers` result size vs the providers' own JSON for the same listing.

The sandbox serves the providers' documented JSON; a counting transport under the toolkit sums the
bytes of every provider answer the listing needed (refresh=true, so nothing comes from the cache).
The tool result's cost is its text plus its structured content, both as sent (compact JSON).
Goal: at most 2x the providers' bytes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from mcp import Client

sys.path.insert(0, str(Path(__file__).parent.parent))

from gpu_tools.sandbox import SandboxServer
from gpu_tools.settings import Settings
from gpu_tools.toolkit import Toolkit
from mcp_server import build_server

GOAL = 2.0
logging.getLogger("httpx").setLevel(logging.WARNING)


class Counting(httpx.AsyncBaseTransport):
    """Counts the body bytes of every provider answer."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.bytes = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        self.bytes += len(body)
        return httpx.Response(response.status_code, headers=response.headers, content=body, request=request)


def cost(result: Any) -> int:
    text = sum(len(c.text.encode()) for c in result.content if getattr(c, "text", None))
    structured = len(
        json.dumps(result.structured_content, separators=(",", ":"), ensure_ascii=False).encode()
    )
    return text + structured


async def main() -> None:
    os.environ["GPU_TOOLS_HOME"] = tempfile.mkdtemp(prefix="gpu-bench-")
    sandbox = SandboxServer().start()
    counting = Counting()
    tk = Toolkit(Settings().for_sandbox(sandbox.url), transport=counting)
    try:
        async with Client(build_server(toolkit=tk)) as client:
            print("list_offers result (text + structured) vs the providers' JSON for the same listing")
            for label, args in (("all offers", {}), ("gpu=H100", {"gpu": "H100"})):
                counting.bytes = 0
                result = await client.call_tool("list_offers", {**args, "refresh": True})
                assert not result.is_error, result.content
                ours, theirs = cost(result), counting.bytes
                items = len(result.structured_content["items"])
                ratio = ours / theirs
                print(
                    f"  {label} ({items} offers): result {ours / 1024:.1f} KB, providers' JSON {theirs / 1024:.1f} KB, "
                    f"ratio {ratio:.2f} (goal <= {GOAL:.0f}) {'OK' if ratio <= GOAL else 'OVER'}"
                )
            result = await client.call_tool("list_offers", {"verbose": True})
            print(f"  all offers with verbose=true (details included): result {cost(result) / 1024:.1f} KB")
    finally:
        await tk.aclose()
        tk.close()
        sandbox.stop()


if __name__ == "__main__":
    asyncio.run(main())
