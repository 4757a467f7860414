"""list_offers from the per-provider cache vs refreshed from the providers (LATENCY each)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import close, median_of, start, toolkit

LATENCY = 0.3
RUNS = 5


async def main() -> None:
    server = start(LATENCY)
    tk = toolkit(server)
    try:
        await tk.call("list_offers", {"refresh": True})
        uncached = await median_of(RUNS, lambda: tk.call("list_offers", {"refresh": True}))
        cached = await median_of(RUNS, lambda: tk.call("list_offers", {}))
        print(f"injected latency per request: {LATENCY * 1000:.0f} ms")
        print(f"refreshed list_offers: {uncached * 1000:.1f} ms")
        print(f"cached list_offers: {cached * 1000:.1f} ms")
        print(f"ratio cached/refreshed: {cached / uncached:.3f}")
    finally:
        await close(tk)
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
