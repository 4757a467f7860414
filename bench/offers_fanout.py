"""list_offers over the four providers vs one provider that needs one request (Nebius: its
templates), every request answered after LATENCY. Goal: fan-out / one-request provider <= 1.2.

- warm: the offers have expired (offers_cache_ttl=0) but the longer-kept data has not (Sesterce's
  prices and hardware, NeoLink's region list): what every later call of a process pays.
- new process: a fresh toolkit (nothing in memory) on a machine where an earlier process kept
  that data on its shelf in the cache directory (for catalog_cache_ttl): a restarted server or
  kernel.
- first ever: a fresh toolkit and an empty cache directory. Sesterce's prices need its catalogue's
  ids and NeoLink's SKUs need its region ids: two round trips are the least those APIs allow.
- refresh: refresh=True on a warm toolkit, which refetches everything (as first ever).
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import close, median_of, start, toolkit

from gpu_tools.settings import cache_dir

LATENCY = 0.2
RUNS = 5


async def fresh(server, args: dict, *, empty_cache: bool) -> None:
    if empty_cache:
        shutil.rmtree(cache_dir() / "catalog", ignore_errors=True)
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
        one_new = await median_of(RUNS, lambda: fresh(server, {"provider": "nebius"}, empty_cache=False))
        all_new = await median_of(RUNS, lambda: fresh(server, {}, empty_cache=False))
        one_first = await median_of(RUNS, lambda: fresh(server, {"provider": "nebius"}, empty_cache=True))
        all_first = await median_of(RUNS, lambda: fresh(server, {}, empty_cache=True))
        one_warm = await median_of(RUNS, lambda: warm.call("list_offers", {"provider": "nebius"}))
        all_warm = await median_of(RUNS, lambda: warm.call("list_offers", {}))
        all_refresh = await median_of(RUNS, lambda: warm.call("list_offers", {"refresh": True}))
        alone = {
            name: await median_of(RUNS, lambda n=name: warm.call("list_offers", {"provider": n}))
            for name in warm.adapters
        }
        ms = lambda s: f"{s * 1000:.0f} ms"  # noqa: E731
        print(f"list_offers, 4 providers, injected latency L = {ms(LATENCY)} per request, median of {RUNS}")
        print(
            f"  one-request provider (nebius): warm {ms(one_warm)}, new process {ms(one_new)}, "
            f"first ever {ms(one_first)}"
        )
        print("  each provider alone, warm: " + ", ".join(f"{n} {ms(s)}" for n, s in alone.items()))
        print(f"  all four, warm:        {ms(all_warm)}  ratio {all_warm / one_warm:.2f}  (goal <= 1.2)")
        print(f"  all four, new process: {ms(all_new)}  ratio {all_new / one_new:.2f}  (goal <= 1.2)")
        print(f"  all four, first ever:  {ms(all_first)}  ratio {all_first / one_first:.2f}")
        print(f"  all four, refresh:     {ms(all_refresh)}  ratio {all_refresh / one_warm:.2f}")
    finally:
        await close(warm)
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
