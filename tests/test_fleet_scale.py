"""Provider work that grows with callers and fleets stays bounded: one fetch per provider for many
concurrent callers, prices kept longer than offers (with their age shown), 1000 NetMind endpoints
read with bounded concurrency, one Sesterce request per get, one TLS context, one journal read."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import ssl
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from gpu_tools import http
from gpu_tools.gate import Approve
from gpu_tools.journal import Journal
from gpu_tools.models import Plan
from gpu_tools.sandbox import SandboxServer
from gpu_tools.sandbox.sesterce import L40S_1
from gpu_tools.settings import Settings, cache_dir
from gpu_tools.toolkit import Toolkit
from tests.clock import FakeClock
from tests.conftest import sandbox_settings

pytestmark = pytest.mark.anyio
NETMIND = Path(__file__).parent / "fixtures" / "netmind"


def requests_by_provider(sandbox: SandboxServer) -> Counter[tuple[str, str, str]]:
    return Counter((r["provider"], r["method"], r["path"]) for r in sandbox.sandbox.requests)


async def test_100_concurrent_cold_callers_make_the_requests_of_one_call(sandbox: SandboxServer) -> None:
    one = Toolkit(sandbox_settings(sandbox))
    try:
        await one.call("list_offers", {})
        single = requests_by_provider(sandbox)
    finally:
        one.close()
    sandbox.sandbox.requests.clear()
    shutil.rmtree(cache_dir() / "catalog")  # what the first kept for a new process: cold again
    many = Toolkit(sandbox_settings(sandbox))
    try:
        results = await asyncio.gather(*(many.call("list_offers", {}) for _ in range(100)))
    finally:
        many.close()
    assert requests_by_provider(sandbox) == single
    assert len({len(r.items) for r in results}) == 1 and results[0].total > 0


async def test_concurrent_spends_share_one_listing_in_flight(tk: Toolkit, sandbox: SandboxServer) -> None:
    """50 `spend`s at once send one provider listing, not 50; each gets its own copies; the next
    call after the listing answered sends its own (nothing is kept)."""
    created = await tk.call(
        "sesterce_create_endpoint",
        {"name": "one", "model_id": "llama-3.1-8b-instruct", "hardware_id": L40S_1, "regions": [18]},
        confirmer=Approve(),
    )
    adapter = tk.adapters["sesterce"]
    real_list, real_resources = adapter.list_resources, tk.resources
    listings = 0
    arrived = 0
    release = asyncio.Event()

    async def held_listing() -> Any:
        nonlocal listings
        listings += 1
        await release.wait()
        return await real_list()

    async def counted(provider: Any) -> Any:
        nonlocal arrived
        arrived += 1
        return await real_resources(provider)

    adapter.list_resources = held_listing  # type: ignore[method-assign]
    tk.resources = counted  # type: ignore[method-assign]
    sandbox.sandbox.requests.clear()
    calls = [asyncio.create_task(tk.call("spend", {"provider": "sesterce"})) for _ in range(50)]
    for _ in range(10_000):  # until every caller waits on the listing (no wall-clock wait)
        if arrived == 50:
            break
        await asyncio.sleep(0)
    assert arrived == 50 and listings == 1
    release.set()
    reports = await asyncio.gather(*calls)
    listed = [r for r in sandbox.sandbox.requests if r["method"] == "GET" and "instances" in r["path"]]
    assert len(listed) == 1
    rid = created.resource.resource_id
    lines = [next(line for line in report.items if line.resource_id == rid) for report in reports]
    assert len({id(line) for line in lines}) == 50 and all(
        line.usd_per_hour == lines[0].usd_per_hour for line in lines
    )
    await tk.call("spend", {"provider": "sesterce"})
    assert listings == 2  # the next caller sends its own listing


async def test_prices_outlive_offers_show_their_age_and_refresh_refetches(sandbox: SandboxServer) -> None:
    clock = FakeClock()
    tk = Toolkit(sandbox_settings(sandbox, offers_cache_ttl=0), now=clock)  # every call reads offers again
    pricing = [("sesterce", "POST", "/sesterce/ai-inference/instances/pricing")]
    try:
        first = await tk.call("list_offers", {"provider": "sesterce"})
        posts = requests_by_provider(sandbox)[pricing[0]]
        assert posts == len([o for o in first.items if o.region is not None]) > 0
        stated = {(o.offer_id, o.region): o.price_as_of for o in first.items if o.price is not None}
        assert all(stated.values())

        sandbox.sandbox.requests.clear()
        clock.advance(5)
        second = await tk.call("list_offers", {"provider": "sesterce"})
        seen = requests_by_provider(sandbox)
        assert seen[pricing[0]] == 0  # prices kept; capacity read again
        assert seen[("sesterce", "GET", "/sesterce/ai-inference/regions")] == 1
        assert {(o.offer_id, o.region): o.price_as_of for o in second.items if o.price is not None} == stated
        assert all(o.price_age_seconds == 5 for o in second.items if o.price is not None)

        sandbox.sandbox.requests.clear()
        third = await tk.call("list_offers", {"provider": "sesterce", "refresh": True})
        assert requests_by_provider(sandbox)[pricing[0]] == posts
        assert all(o.price_age_seconds == 0 for o in third.items if o.price is not None)
    finally:
        tk.close()


async def test_cached_offers_say_when_their_price_was_stated(tk: Toolkit, sandbox: SandboxServer) -> None:
    await tk.call("list_offers", {"provider": "neolink"})
    sandbox.sandbox.requests.clear()
    again = await tk.call("list_offers", {"provider": "neolink"})
    assert sandbox.sandbox.requests == []
    priced = [o for o in again.items if o.price is not None]
    assert priced and all(o.price_as_of and o.price_age_seconds is not None for o in priced)


async def test_a_sesterce_get_and_each_wait_poll_is_one_request(tk: Toolkit, sandbox: SandboxServer) -> None:
    created = await tk.call(
        "sesterce_create_endpoint",
        {"name": "one", "model_id": "llama-3.1-8b-instruct", "hardware_id": L40S_1, "regions": [18]},
        confirmer=Approve(),
    )
    rid = created.resource.resource_id
    await tk.call("get_resource", {"provider": "sesterce", "resource_id": rid})  # the catalogue is kept
    sandbox.sandbox.requests.clear()
    got = await tk.call("get_resource", {"provider": "sesterce", "resource_id": rid})
    assert [(r["method"], r["path"]) for r in sandbox.sandbox.requests] == [
        ("GET", f"/sesterce/ai-inference/instances/{rid}")
    ]
    assert got.gpu_name == "NVIDIA-L40S"
    sandbox.sandbox.requests.clear()
    await tk.call(
        "wait_for_resource",
        {
            "provider": "sesterce",
            "resource_id": rid,
            "until": "running",
            "poll_seconds": 0.2,
            "timeout_seconds": 30,
        },
    )
    polls = sandbox.sandbox.requests
    assert len(polls) >= 2 and all(r["path"] == f"/sesterce/ai-inference/instances/{rid}" for r in polls)


def journal_endpoints(journal: Journal, count: int) -> list[str]:
    ids = [f"{i:032x}" for i in range(count)]
    for sid in ids:
        plan = Plan(
            provider="netmind",
            operation="netmind_create_endpoint",
            action="create",
            target=f"ep-{sid[-4:]}",
            method="POST",
            path="/v1/inference-service",
            reversible=True,
            reversibility="delete it",
        )
        row = journal.record(plan, "create", "unknown")
        journal.finish(row, "ok", resource_id=f"endpoint:{sid}", kind="endpoint")
    return ids


async def test_1000_netmind_endpoints_are_read_with_bounded_concurrency() -> None:
    template = json.loads((NETMIND / "endpoint_available.json").read_text())
    in_flight = peak = 0

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        if request.url.path.startswith("/v1/rentgpu/containers"):
            return httpx.Response(200, json=[])
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= 1
        return httpx.Response(200, json={**template, "service_id": request.url.path.rsplit("/", 1)[-1]})

    tk = Toolkit(Settings(netmind_api_key=SecretStr("k" * 20)), transport=httpx.MockTransport(answer))
    try:
        ids = journal_endpoints(tk.journal, 1000)
        listed = await tk.call("list_resources", {"provider": "netmind"})
    finally:
        await tk.aclose()
        tk.close()
    assert sorted(r.resource_id for r in listed.items) == sorted(f"endpoint:{i}" for i in ids)
    assert 1 < peak <= http.MAX_IN_FLIGHT


async def test_every_provider_client_shares_one_tls_context(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[Any] = []
    real = ssl.SSLContext.load_verify_locations

    def counted(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(args or kwargs)
        real(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    http.tls_context.cache_clear()
    tk = Toolkit(Settings())
    try:
        clients = [adapter.http._get_client() for adapter in tk.adapters.values()]
        pools = {id(c._transport._pool._ssl_context) for c in clients}  # type: ignore[attr-defined]
    finally:
        await tk.aclose()
        tk.close()
    assert len(clients) == 4 and len(pools) == 1 and len(loads) == 1


async def test_find_orphans_reads_the_journal_once(
    tk: Toolkit, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    for name in ("live", "created_among", "entries"):
        real = getattr(tk.journal, name)
        monkeypatch.setattr(
            tk.journal, name, lambda *a, _n=name, _r=real, **k: (reads.append(_n), _r(*a, **k))[1]
        )
    await tk.call("find_orphans", {"provider": "sesterce"})
    assert reads == ["live"]


def test_the_sandbox_socket_says_tcp_so_asyncio_turns_nagle_off() -> None:
    """asyncio sets TCP_NODELAY only on sockets whose protocol is IPPROTO_TCP; without it every
    sandbox answer waited ~40 ms for a delayed ACK."""
    server = SandboxServer()
    try:
        assert server._sock.proto == socket.IPPROTO_TCP
    finally:
        server._sock.close()


async def test_a_shared_fetch_survives_a_cancelled_caller_and_failures_are_not_kept() -> None:
    calls = 0
    release = asyncio.Event()

    async def fetch() -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        if calls == 1:
            raise http.errors.ProviderUnavailable("down", provider="x")
        return calls

    memo: http.Memo[int] = http.Memo(lambda: 60.0)
    first = asyncio.create_task(memo.get("k", fetch))
    second = asyncio.create_task(memo.get("k", fetch))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    with pytest.raises(http.errors.ProviderUnavailable):
        await second  # the cancelled caller did not cancel the fetch the other one waits on
    assert calls == 1
    assert (await memo.get("k", fetch)).value == 2  # the failure was not kept
    assert (await memo.get("k", fetch)).value == 2 and calls == 2  # the answer is
    assert (await memo.get("k", fetch, refresh=True)).value == 3


def test_a_sandbox_started_on_first_request_serves_it_and_stops_when_never_asked() -> None:
    idle = SandboxServer().start(on_first_request=True)
    assert not idle.serving
    idle.stop()  # returns although it never served
    lazy = SandboxServer().start(on_first_request=True)
    try:
        assert not lazy.serving  # nothing has reached it yet
        answer = httpx.get(f"{lazy.url}/_sandbox/requests", timeout=10)
        assert answer.status_code == 200 and lazy.serving
    finally:
        lazy.stop()
