"""Load on a team server: several `gpu-mcp --transport http` processes on one PostgreSQL journal,
many concurrent creates with auto-approval, a total cap that fits K of them.

Prints how many creates reached the sandbox (it must be exactly K), whether every attempt left
exactly one journal row, the throughput, and the latency per create (confirmed and refused).

    python bench/team_load.py                       # 2 servers, 200 creates, cap fits 10
    python bench/team_load.py --servers 4 --creates 400 --fits 25 --latency 0.2

It starts its own PostgreSQL server in a temporary directory (tests/pg.py), unless
GPU_TOOLS_JOURNAL_URL names an empty database to use.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack, ExitStack, nullcontext
from pathlib import Path
from typing import Any

import httpx
import httpx2
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpu_tools.journal import PostgresJournal
from gpu_tools.sandbox import SandboxServer
from tests.pg import free_port, temporary_postgres

CREATE = "nebius_create_endpoint"
ARGS = {"model_name": "openai/gpt-oss-20b", "flavor_name": "base", "gpu_type": "gpu-h100-sxm"}
PRICE = 6.0  # USD per GPU-hour set for the sandbox's H100 (one GPU per endpoint)


async def accept(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"confirm": True})


def start_server(
    sandbox: SandboxServer, journal_url: str, cap: float, n: int
) -> tuple[subprocess.Popen, str]:
    port = free_port()
    home = tempfile.mkdtemp(prefix=f"gpu-bench-server{n}-")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": home,
        "GPU_TOOLS_HOME": home,
        "NEBIUS_API_KEY": "sandbox-key",
        "NEBIUS_BASE_URL": f"{sandbox.url}/nebius",
        "NEBIUS_GPU_USD_PER_HOUR": json.dumps({"gpu-h100-sxm": PRICE}),
        "GPU_TOOLS_JOURNAL_URL": journal_url,
        "GPU_TOOLS_MAX_TOTAL_USD_PER_HOUR": str(cap),
        "GPU_TOOLS_HTTP_TOKENS": json.dumps({f"tok-bench-{n}-0123456789": f"bench{n}"}),
        "GPU_TOOLS_HTTP_STATE_KEY": "bench-shared-secret-of-at-least-32-chars",
    }
    args = [sys.executable, "-m", "mcp_server", "--transport", "http", "--port", str(port)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/mcp"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url, timeout=1)
            return proc, url
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server {n} did not start") from None
            time.sleep(0.1)


async def run(args: argparse.Namespace, journal_url: str) -> None:
    cap = PRICE * (args.fits + 0.5)
    sandbox = SandboxServer(ready_after=0.1).start()
    httpx.post(
        f"{sandbox.url}/_sandbox/faults",
        json={"provider": "nebius", "latency": args.latency, "methods": ["POST"]},
    ).raise_for_status()
    with ExitStack() as servers:
        urls = []
        for n in range(args.servers):
            proc, url = start_server(sandbox, journal_url, cap, n)
            servers.callback(proc.wait, 10)
            servers.callback(proc.terminate)
            urls.append(url)
        async with AsyncExitStack() as stack:
            clients = []
            for n, url in enumerate(urls):
                http = httpx2.AsyncClient(
                    headers={"Authorization": f"Bearer tok-bench-{n}-0123456789"}, timeout=httpx2.Timeout(120)
                )
                await stack.enter_async_context(http)
                client = Client(streamable_http_client(url, http_client=http), elicitation_callback=accept)
                clients.append(await stack.enter_async_context(client))
            timings: list[tuple[bool, float, str]] = []

            async def create(i: int) -> None:
                t0 = time.perf_counter()
                result = await clients[i % len(clients)].call_tool(CREATE, {**ARGS, "name": f"load-{i}"})
                text = " ".join(getattr(c, "text", "") for c in result.content) if result.is_error else ""
                timings.append((not result.is_error, time.perf_counter() - t0, text))

            t0 = time.perf_counter()
            await asyncio.gather(*(create(i) for i in range(args.creates)))
            wall = time.perf_counter() - t0
    reached = [
        r
        for r in httpx.get(f"{sandbox.url}/_sandbox/requests").json()
        if r["method"] == "POST" and r["path"].endswith("/dedicated_endpoints")
    ]
    sandbox.stop()
    journal = PostgresJournal(journal_url)
    rows, total = journal.entries(limit=args.creates * 2)
    journal.close()
    done = [t for ok, t, _ in timings if ok]
    refused = [t for ok, t, text in timings if not ok and "max_total_usd_per_hour" in text]
    other = [text for ok, _, text in timings if not ok and "max_total_usd_per_hour" not in text]

    def stats(values: list[float]) -> str:
        if not values:
            return "none"
        q = statistics.quantiles(values, n=20, method="inclusive") if len(values) > 1 else values * 19
        return f"p50 {statistics.median(values) * 1000:.0f} ms, p95 {q[18] * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"

    print(
        f"servers: {args.servers}; creates: {args.creates}; the cap fits {args.fits}; sandbox latency {args.latency:g} s"
    )
    print(
        f"reached the sandbox: {len(reached)} (expected exactly {args.fits}) -> {'OK' if len(reached) == args.fits else 'WRONG'}"
    )
    print(
        f"refused naming the cap: {len(refused)}; other errors: {len(other)}"
        + (f" (first: {other[0][:200]})" if other else "")
    )
    once = total == args.creates and len({r.target for r in rows}) == args.creates
    print(
        f"journal rows: {total} for {args.creates} attempts, one per attempt -> {'OK' if once else 'WRONG'}"
    )
    print(f"throughput: {args.creates / wall:.1f} creates/s ({wall:.2f} s wall)")
    print(f"latency, confirmed creates: {stats(done)}")
    print(f"latency, refused creates: {stats(refused)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--creates", type=int, default=200)
    parser.add_argument("--fits", type=int, default=10, help="how many creates the total cap fits (K)")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds the sandbox takes per create")
    args = parser.parse_args()
    given = os.environ.get("GPU_TOOLS_JOURNAL_URL")
    with nullcontext(given) if given else temporary_postgres() as admin_url:
        asyncio.run(run(args, admin_url))


if __name__ == "__main__":
    main()
