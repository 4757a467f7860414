"""Sesterce get_resource and wait_for_resource polls: requests each and time in units of the
injected latency L. Goal: 1 request (the hardware catalogue is kept, not read again per call)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import close, median_of, requests, sesterce_fleet, set_latency, start, timed, toolkit

LATENCY = 0.1
RUNS = 5


async def main() -> None:
    server = start(0)
    tk = toolkit(server)
    try:
        [rid] = await sesterce_fleet(server, tk, 1)
        await close(tk)
        tk = toolkit(server)
        set_latency(server, LATENCY)
        args = {"provider": "sesterce", "resource_id": rid}
        server.sandbox.requests.clear()
        first_s = await timed(lambda: tk.call("get_resource", args))
        first = requests(server)
        server.sandbox.requests.clear()
        later_s = await median_of(RUNS, lambda: tk.call("get_resource", args))
        later = requests(server) / RUNS
        server.sandbox.requests.clear()
        wait = {**args, "until": "running", "poll_seconds": 0.1, "timeout_seconds": 60}
        await tk.call("wait_for_resource", wait)
        polls = requests(server)
        print(f"injected latency L = {LATENCY * 1000:.0f} ms")
        print(f"first get_resource (cold catalogue): {first} requests at once, {first_s / LATENCY:.2f} L")
        print(f"each later get_resource: {later:.0f} request, {later_s / LATENCY:.2f} L")
        print(f"wait_for_resource until running: {polls} polls, {polls} requests")
        print(f"requests per get / poll: {later:.2f} (goal 1)")
    finally:
        await close(tk)
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
