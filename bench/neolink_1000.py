"""NeoLink list_resources with 1000 instances, every request answered after LATENCY. Goal: the
largest pages, all read at once after the first (which says how many there are), nothing cut
short. The sandbox runs in this process, so its CPU (rendering 1000 instances) adds to the time;
"pages in flight" is counted at the client."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import close, neolink_fleet, set_latency, start, timed, toolkit

from gpu_tools.http import ProviderHTTP

LATENCY = 0.5
COUNT = 1000


async def main() -> None:
    server = start(0)
    tk = toolkit(server)
    in_flight = peak = 0
    real = ProviderHTTP.request

    async def counted(self: ProviderHTTP, method: str, path: str, **kw: object) -> object:
        nonlocal in_flight, peak
        paging = path.endswith("/instances")
        in_flight += paging
        peak = max(peak, in_flight)
        try:
            return await real(self, method, path, **kw)
        finally:
            in_flight -= paging

    try:
        await neolink_fleet(server, tk, COUNT)
        await tk.call("list_resources", {"provider": "neolink"})  # the region list is known
        listing = None

        async def go() -> None:
            nonlocal listing
            listing = await tk.call("list_resources", {"provider": "neolink"})

        floor = await timed(go)
        set_latency(server, LATENCY)
        server.sandbox.requests.clear()
        ProviderHTTP.request = counted  # type: ignore[method-assign]
        seconds = await timed(go)
        pages = [r for r in server.sandbox.requests if r["path"].endswith("/instances")]
        sizes = {r["query"].rpartition("pageSize=")[2] for r in pages if "pageSize=" in r["query"]}
        print(f"NeoLink list_resources, {COUNT} instances, injected latency L = {LATENCY * 1000:.0f} ms")
        print(f"  listed {listing.total}, provider status {[p.status for p in listing.providers]}")
        print(
            f"  {len(server.sandbox.requests)} requests: 1 region list, {len(pages)} instance pages "
            f"(the unpaged list of each cluster, then pageSize {', '.join(sorted(sizes))}; 2 clusters, one empty)"
        )
        print(f"  peak instance pages in flight: {peak}")
        print(
            f"  {seconds * 1000:.0f} ms = {seconds / LATENCY:.2f} L with latency; {floor * 1000:.0f} ms without "
            f"(CPU of client and in-process sandbox). One page after another would be >= {len(pages) - 1} L."
        )
    finally:
        ProviderHTTP.request = real  # type: ignore[method-assign]
        await close(tk)
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
