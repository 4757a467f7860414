"""wait_for_resource through a real MCP client over stdio, on a sandbox endpoint that needs READY_AFTER
seconds to start (80 by default; pass another number to try it faster): how long the first call
takes against the 60 s many clients allow a request, and how long the second call takes to finish."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters, types

CLIENT_LIMIT = 60.0
CREATE = {
    "name": "bench",
    "model_name": "openai/gpt-oss-20b",
    "flavor_name": "base",
    "gpu_type": "gpu-h100-sxm",
}


async def main(ready_after: float) -> None:
    gpu_mcp = Path(sys.executable).with_name("gpu-mcp")
    params = StdioServerParameters(
        command=str(gpu_mcp),
        args=["--sandbox", "--sandbox-ready-after", str(ready_after)],
        env={**os.environ, "GPU_TOOLS_HOME": tempfile.mkdtemp(prefix="gpu-bench-")},
    )
    progress: list[float] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(time.perf_counter())

    async def accept(context: Any, request: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"confirm": True})

    async with Client(params, elicitation_callback=accept) as client:
        created = await client.call_tool("nebius_create_endpoint", CREATE)
        ref = {"provider": "nebius", "resource_id": created.structured_content["resource"]["resource_id"]}  # type: ignore[index]
        t0 = time.perf_counter()
        first = await client.call_tool("wait_for_resource", ref, progress_callback=on_progress)
        t1 = time.perf_counter()
        second = await client.call_tool("wait_for_resource", ref, progress_callback=on_progress)
        t2 = time.perf_counter()
    gaps = [b - a for a, b in zip([t0, *progress], progress, strict=False)]
    print(f"endpoint start time: {ready_after:g} s")
    print(f"first call: {t1 - t0:.1f} s, reached={first.structured_content['reached']}")  # type: ignore[index]
    print(f"second call: {t2 - t1:.1f} s, reached={second.structured_content['reached']}")  # type: ignore[index]
    print(f"longest silence between progress notifications: {max(gaps, default=0):.1f} s")
    print(f"ratio first call / {CLIENT_LIMIT:g} s client limit: {(t1 - t0) / CLIENT_LIMIT:.2f}")


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 80.0))
