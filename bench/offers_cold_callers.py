"""100 concurrent list_offers on a cold cache vs one list_offers: provider requests sent.
Goal: the same number (concurrent callers share each provider's in-flight fetch). Cold means
nothing kept anywhere: the catalogue an earlier call left in the cache directory is removed first."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import close, requests, start, timed, toolkit

from gpu_tools.settings import cache_dir

CALLERS = 100
LATENCY = 0.05


async def main() -> None:
    server = start(LATENCY)
    try:
        tk = toolkit(server)
        one_s = await timed(lambda: tk.call("list_offers", {}))
        one = requests(server)
        await close(tk)
        server.sandbox.requests.clear()
        shutil.rmtree(cache_dir() / "catalog", ignore_errors=True)
        tk = toolkit(server)
        many_s = await timed(lambda: asyncio.gather(*(tk.call("list_offers", {}) for _ in range(CALLERS))))
        many = requests(server)
        await close(tk)
        print(f"one cold list_offers: {one} provider requests, {one_s * 1000:.0f} ms")
        print(f"{CALLERS} concurrent cold list_offers: {many} provider requests, {many_s * 1000:.0f} ms")
        print(f"ratio requests {CALLERS} callers / one call: {many / one:.2f} (goal 1.00)")
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
