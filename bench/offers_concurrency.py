"""list_offers across four providers, each request answered after LATENCY: concurrently vs one after another.

The fan-out should take about as long as the slowest single provider (ratio near 1), not the sum of all
four. A provider whose offers need several round trips (Sesterce prices each hardware) is slower alone.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import best_of, start

LATENCY = 0.3
RUNS = 3


async def main() -> None:
    server, tk = start(LATENCY)
    try:

        async def concurrent() -> None:
            await tk.call("list_offers", {"refresh": True})

        async def sequential() -> None:
            for adapter in tk.adapters.values():
                await adapter.list_offers()

        await concurrent()  # warm up connections
        alone = {}
        for adapter in tk.adapters.values():
            alone[adapter.name] = await best_of(RUNS, adapter.list_offers)
        fan_out = await best_of(RUNS, concurrent)
        one_by_one = await best_of(RUNS, sequential)
        slowest = max(alone, key=alone.__getitem__)
        print(f"providers: {len(alone)}, injected latency per request: {LATENCY * 1000:.0f} ms")
        for name, seconds in alone.items():
            print(f"  {name} alone: {seconds * 1000:.0f} ms")
        print(f"concurrent list_offers: {fan_out * 1000:.0f} ms")
        print(f"one provider after another: {one_by_one * 1000:.0f} ms")
        print(f"ratio concurrent/sequential: {fan_out / one_by_one:.2f}")
        print(
            f"ratio concurrent/slowest provider alone ({slowest}): {fan_out / alone[slowest]:.2f} (ideal 1.0)"
        )
    finally:
        await tk.aclose()
        tk.close()
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
