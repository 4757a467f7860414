"""Slowly changing catalogue data (Sesterce's prices and hardware, NeoLink's region list) is kept on
a shelf in the cache directory, so a new process's first list_offers is one round trip; it keeps
the price's first fetch time, expires, survives a broken file, and never names the credentials."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from gpu_tools.providers.sesterce import SesterceProvider
from gpu_tools.sandbox import SandboxServer
from gpu_tools.settings import Settings, cache_dir
from gpu_tools.toolkit import Toolkit
from tests.conftest import sandbox_settings

pytestmark = pytest.mark.anyio
PRICING = ("sesterce", "POST", "/sesterce/ai-inference/instances/pricing")


def seen(sandbox: SandboxServer) -> Counter[tuple[str, str, str]]:
    return Counter((r["provider"], r["method"], r["path"]) for r in sandbox.sandbox.requests)


def prices(listing: object) -> dict[tuple[str, str | None], str | None]:
    """When each Sesterce price was fetched (NeoLink's come with its SKU list, read every time)."""
    items = listing.items  # type: ignore[attr-defined]
    return {
        (o.offer_id, o.region): o.price_as_of
        for o in items
        if o.provider == "sesterce" and o.price is not None
    }


async def first_process(
    sandbox: SandboxServer, **settings: object
) -> dict[tuple[str, str | None], str | None]:
    tk = Toolkit(sandbox_settings(sandbox, **settings))
    try:
        return prices(await tk.call("list_offers", {}))
    finally:
        await tk.aclose()
        tk.close()


class HoldsTheRegionList(httpx.AsyncBaseTransport):
    """Passes every request through, but holds NeoLink's answer to the region list until a SKU list
    has been asked (at most 10 s): a client that asks the SKUs only after the region list answered
    is found out by order, not by timing."""

    def __init__(self) -> None:
        self._through = httpx.AsyncHTTPTransport()
        self._skus_asked = asyncio.Event()
        self.skus_asked_before_the_regions_answered = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/neolink/mdc/api/v1/skus/computings"):
            self._skus_asked.set()
        response = await self._through.handle_async_request(request)
        if request.url.path.endswith("/neolink/mdc/api/v1/regions"):
            try:
                await asyncio.wait_for(self._skus_asked.wait(), 10)  # bounds a client that waits for it
            except TimeoutError:
                pass
            self.skus_asked_before_the_regions_answered = self._skus_asked.is_set()
        return response

    async def aclose(self) -> None:
        await self._through.aclose()


def shelves() -> list[Path]:
    return sorted((cache_dir() / "catalog").glob("*.json"))


async def test_a_new_process_lists_offers_in_one_round_trip_with_the_prices_first_fetch_time(
    sandbox: SandboxServer,
) -> None:
    stated = await first_process(sandbox)
    assert stated and all(stated.values())
    assert [p.name for p in shelves()] == ["neolink-sandbox.json", "sesterce-sandbox.json"]

    sandbox.sandbox.requests.clear()
    held = HoldsTheRegionList()
    tk = Toolkit(sandbox_settings(sandbox), transport=held)  # what a new process builds: nothing in memory
    try:
        listing = await tk.call("list_offers", {})
    finally:
        await tk.aclose()
        tk.close()
    # NeoLink: each known region's SKUs were asked together with the region list, not after it.
    assert held.skus_asked_before_the_regions_answered
    after = seen(sandbox)
    assert after[("neolink", "GET", "/neolink/mdc/api/v1/regions")] == 1
    assert after[("neolink", "GET", "/neolink/mdc/api/v1/skus/computings")] >= 1
    # Sesterce: the catalogue is read again for capacity, every price comes from the shelf.
    assert after[PRICING] == 0
    assert after[("sesterce", "GET", "/sesterce/ai-inference/regions")] == 1
    assert prices(listing) == stated  # the age shown is the first fetch's, not this process's


async def test_kept_data_expires_and_refresh_refetches_and_rewrites(sandbox: SandboxServer) -> None:
    stated = await first_process(sandbox)
    posts = sum(1 for _ in stated)

    sandbox.sandbox.requests.clear()
    await first_process(sandbox, catalog_cache_ttl=0.001)  # what was kept is older than that
    assert seen(sandbox)[PRICING] == posts

    # What is kept was fetched 30 s ago: fresh, unchanged, and younger than the time after which an
    # unchanged value is written again. A refresh must still write its own time through.
    path = cache_dir() / "catalog" / "sesterce-sandbox.json"
    stored = json.loads(path.read_text())
    earlier = (datetime.now(UTC) - timedelta(seconds=30)).isoformat()
    for entry in stored["sections"]["prices"].values():
        entry[0] = earlier
    path.write_text(json.dumps(stored))
    kept_earlier = await first_process(sandbox)
    assert seen(sandbox)[PRICING] == posts  # nothing more was asked: the kept prices were used

    sandbox.sandbox.requests.clear()
    tk = Toolkit(sandbox_settings(sandbox))
    try:
        refreshed = prices(await tk.call("list_offers", {"refresh": True}))
    finally:
        tk.close()
    assert seen(sandbox)[PRICING] == posts
    assert all(refreshed[k] > kept_earlier[k] for k in kept_earlier)  # type: ignore[operator]
    sandbox.sandbox.requests.clear()
    kept = await first_process(sandbox)
    assert seen(sandbox)[PRICING] == 0 and kept == refreshed  # the next process sees the refresh


@pytest.mark.parametrize(
    "content", ["{not json", '{"version": 1, "sections": []}', '{"version": 99}', "[1, 2]"]
)
async def test_a_broken_or_foreign_shelf_reads_as_empty_and_is_written_again(
    sandbox: SandboxServer, content: str
) -> None:
    stated = await first_process(sandbox)
    for path in shelves():
        path.write_text(content)
    sandbox.sandbox.requests.clear()
    assert (await first_process(sandbox)).keys() == stated.keys()
    assert seen(sandbox)[PRICING] == len(stated)
    for path in shelves():
        assert json.loads(path.read_text())["version"] == 1


async def test_a_kept_value_of_another_shape_is_fetched_again(sandbox: SandboxServer) -> None:
    stated = await first_process(sandbox)
    path = cache_dir() / "catalog" / "sesterce-sandbox.json"
    stored = json.loads(path.read_text())
    for entry in stored["sections"]["prices"].values():
        entry[1] = {"price": "not what Pricing reads"}
    path.write_text(json.dumps(stored))
    sandbox.sandbox.requests.clear()
    await first_process(sandbox)
    assert seen(sandbox)[PRICING] == len(stated)


async def test_an_unwritable_cache_directory_only_costs_round_trips(sandbox: SandboxServer) -> None:
    cache_dir().mkdir(parents=True, exist_ok=True)
    (cache_dir() / "catalog").write_text("a file where the directory would go")
    first = await first_process(sandbox)
    sandbox.sandbox.requests.clear()
    assert (await first_process(sandbox)).keys() == first.keys()
    assert seen(sandbox)[PRICING] == len(first)


def test_each_account_has_its_own_shelf_and_its_name_never_holds_the_key() -> None:
    def shelf(key: str, url: str = "https://api.sesterce.example") -> Path:
        settings = Settings(sesterce_api_key=SecretStr(key), sesterce_base_url=url)
        return SesterceProvider(settings).shelf.path

    alice, bob = shelf("sk-alice-0123456789"), shelf("sk-bob-0123456789")
    assert alice != bob and alice == shelf("sk-alice-0123456789")
    assert alice != shelf("sk-alice-0123456789", "https://eu.sesterce.example")
    assert "alice" not in str(alice) and alice.parent == cache_dir() / "catalog"


def test_a_write_scheduled_on_a_loop_that_stopped_is_scheduled_again_on_the_next(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from gpu_tools.shelf import Shelf

    shelf = Shelf(tmp_path / "s.json")
    dead = asyncio.new_event_loop()

    async def put(value: int) -> None:
        shelf.put("prices", "k", datetime.now(UTC), value)

    async def put_then_stop() -> None:
        await put(1)
        asyncio.get_running_loop().stop()  # the loop ends before the flush it was given runs

    dead.create_task(put_then_stop())
    dead.run_forever()
    dead.close()
    asyncio.run(put(2))
    assert json.loads((tmp_path / "s.json").read_text())["sections"]["prices"]["k"][1] == 2
