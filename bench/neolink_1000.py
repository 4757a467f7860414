"""NeoLink list_resources with 1000 instances, every request answered after LATENCY. Goal: the
largest pages, read at once after the first (which says how many there are), nothing cut short."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import close, neolink_fleet, set_latency, start, timed, toolkit

from gpu_tools.providers.neolink import PAGE_SIZE

LATENCY = 0.1
COUNT = 1000


async def main() -> None:
    server = start(0)
    tk = toolkit(server)
    try:
        await neolink_fleet(server, tk, COUNT)
        await tk.call("list_resources", {"provider": "neolink"})  # the region list is known
        listing = None

        async def go() -> None:
            nonlocal listing
            listing = await tk.call("list_resources", {"provider": "neolink"})

        floor = await timed(go)  # no latency: CPU (client and the in-process sandbox)
        set_latency(server, LATENCY)
        server.sandbox.requests.clear()
        seconds = await timed(go)
        pages = [r for r in server.sandbox.requests if r["path"].endswith("/instances")]
        print(f"NeoLink list_resources, {COUNT} instances, injected latency L = {LATENCY * 1000:.0f} ms")
        print(f"  listed {listing.total}, status {[p.status for p in listing.providers]}")
        print(
            f"  {len(server.sandbox.requests)} requests ({len(pages)} instance pages of up to {PAGE_SIZE}, 1 region list)"
        )
        print(
            f"  {seconds * 1000:.0f} ms with latency, {floor * 1000:.0f} ms without (CPU of client and sandbox)"
        )
        rounds = (seconds - floor) / LATENCY
        print(f"  round trips in sequence: {rounds:.2f} (first page, then every other page at once: 2)")
    finally:
        await close(tk)
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
