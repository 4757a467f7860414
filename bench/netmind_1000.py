"""NetMind list_resources with N journaled endpoints (one GET each: NetMind has no list call).
Goal: bounded concurrency and client CPU linear in N. The provider is an in-process mock with a
1 ms answer, so the CPU measured is the client's own (the sandbox would add its own CPU)."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).parent))
from _common import journal_creates

from gpu_tools import http
from gpu_tools.settings import Settings
from gpu_tools.toolkit import Toolkit

ENDPOINT = json.loads(
    (Path(__file__).parent.parent / "tests" / "fixtures" / "netmind" / "endpoint_available.json").read_text()
)


async def run(count: int) -> tuple[float, float, int]:
    in_flight = peak = 0

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        if request.url.path.startswith("/v1/rentgpu/containers"):
            return httpx.Response(200, json=[])
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= 1
        return httpx.Response(200, json={**ENDPOINT, "service_id": request.url.path.rsplit("/", 1)[-1]})

    home = tempfile.mkdtemp(prefix="gpu-bench-")
    settings = Settings(netmind_api_key=SecretStr("bench-key-0000"), journal_path=f"{home}/j.sqlite3")
    tk = Toolkit(settings, transport=httpx.MockTransport(answer))
    journal_creates(tk.journal, "netmind", [f"endpoint:{i:032x}" for i in range(count)], "endpoint")
    cpu, wall = time.process_time(), time.perf_counter()
    listed = await tk.call("list_resources", {"provider": "netmind"})
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert listed.total == count
    await tk.aclose()
    tk.close()
    return cpu, wall, peak


async def main() -> None:
    await run(10)  # warm up imports
    rows = {}
    for n in (250, 500, 1000, 2000):
        runs = [await run(n) for _ in range(3)]
        rows[n] = min(runs)  # the least disturbed run (lowest CPU)
    print(f"NetMind list_resources, N journaled endpoints (in-flight bound {http.MAX_IN_FLIGHT})")
    for n, (cpu, wall, peak) in rows.items():
        print(
            f"  N={n:5}: client CPU {cpu * 1000:6.0f} ms ({cpu / n * 1e6:.0f} us/endpoint), wall {wall * 1000:.0f} ms, peak in flight {peak}"
        )
    ratio = (rows[2000][0] / 2000) / (rows[250][0] / 250)
    print(f"ratio CPU per endpoint, N=2000 / N=250: {ratio:.2f} (linear: about 1; quadratic: 8)")


if __name__ == "__main__":
    asyncio.run(main())
