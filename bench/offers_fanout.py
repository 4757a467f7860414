"""list_offers over the four providers vs one provider that needs one request (Nebius: its
templates), every request answered after LATENCY. Goal: fan-out / one-request provider <= 1.2.

- cold: a fresh toolkit, nothing cached (what the first call of a new process pays). Sesterce's
  prices need its catalogue's ids and NeoLink's SKUs need its region ids: two round trips at least.
- warm: the offers have expired (offers_cache_ttl=0) but the longer-kept data has not (Sesterce's
  prices and hardware, NeoLink's region list): what every later call pays.
- refresh: refresh=True on a warm toolkit, which refetches everything (as cold).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import close, median_of, start, toolkit

LATENCY = 0.2
RUNS = 5


async def cold(server, args: dict) -> None:
    tk = toolkit(server)
    try:
        await tk.call("list_offers", args)
    finally:
        await close(tk)


async def main() -> None:
    server = start(LATENCY)
    warm = toolkit(server, offers_cache_ttl=0)
    try:
        await warm.call("list_offers", {})  # keeps prices and region lists
        one_cold = await median_of(RUNS, lambda: cold(server, {"provider": "nebius"}))
        all_cold = await median_of(RUNS, lambda: cold(server, {}))
        one_warm = await median_of(RUNS, lambda: warm.call("list_offers", {"provider": "nebius"}))
        all_warm = await median_of(RUNS, lambda: warm.call("list_offers", {}))
        all_refresh = await median_of(RUNS, lambda: warm.call("list_offers", {"refresh": True}))
        alone = {
            name: await median_of(RUNS, lambda n=name: warm.call("list_offers", {"provider": n}))
            for name in warm.adapters
        }
        ms = lambda s: f"{s * 1000:.0f} ms"  # noqa: E731
        print(f"list_offers, 4 providers, injected latency L = {ms(LATENCY)} per request, median of {RUNS}")
        print(f"  one-request provider (nebius), cold: {ms(one_cold)}   warm: {ms(one_warm)}")
        print("  each provider alone, warm: " + ", ".join(f"{n} {ms(s)}" for n, s in alone.items()))
        print(f"  all four, cold:    {ms(all_cold)}  ratio {all_cold / one_cold:.2f}")
        print(f"  all four, warm:    {ms(all_warm)}  ratio {all_warm / one_warm:.2f}  (goal <= 1.2)")
        print(f"  all four, refresh: {ms(all_refresh)}  ratio {all_refresh / one_warm:.2f}")
    finally:
        await close(warm)
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
