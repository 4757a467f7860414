"""Shared set-up for the benchmarks: a sandbox on loopback (latency injected per provider through
`/_sandbox/faults`), toolkits on it, fleets, and medians."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from gpu_tools.gate import Approve
from gpu_tools.journal import Journal
from gpu_tools.models import Plan
from gpu_tools.providers import ADAPTERS
from gpu_tools.sandbox import SandboxServer, fill
from gpu_tools.settings import Settings
from gpu_tools.toolkit import Toolkit


def start(latency: float = 0.0) -> SandboxServer:
    os.environ["GPU_TOOLS_HOME"] = tempfile.mkdtemp(prefix="gpu-bench-")
    server = SandboxServer().start()
    set_latency(server, latency)
    return server


async def sandbox_process(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    """`gpu-sandbox` (with `args`) in a process of its own on a free loopback port, so its work is
    not the benchmark's to measure; returned once it answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from gpu_tools.sandbox.cli import main; main()",
        "--port",
        str(port),
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as http:
        for _ in range(400):
            try:
                await http.get(f"{url}/_sandbox/requests")
                return proc, url
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    proc.terminate()
    raise SystemExit("gpu-sandbox did not start")


def set_latency(server: SandboxServer, latency: float) -> None:
    for provider in ADAPTERS:
        httpx.post(f"{server.url}/_sandbox/faults", json={"provider": provider, "latency": latency})


def toolkit(server: SandboxServer, **settings: Any) -> Toolkit:
    """A fresh toolkit (nothing cached) with its own journal."""
    home = tempfile.mkdtemp(prefix="gpu-bench-")
    base = Settings(provider_timeout=120, journal_path=f"{home}/journal.sqlite3", **settings)
    return Toolkit(base.for_sandbox(server.url))


async def close(tk: Toolkit) -> None:
    await tk.aclose()
    tk.close()


async def timed(fn: Callable[[], Awaitable[Any]]) -> float:
    t0 = time.perf_counter()
    await fn()
    return time.perf_counter() - t0


async def median_of(runs: int, fn: Callable[[], Awaitable[Any]]) -> float:
    return statistics.median([await timed(fn) for _ in range(runs)])


def requests(server: SandboxServer, provider: str | None = None) -> int:
    return sum(1 for r in server.sandbox.requests if provider is None or r["provider"] == provider)


# ---- fleets ---------------------------------------------------------------------------------------
NEOLINK_CREATE = {
    "display_name": "bench",
    "image": "images.neolink-ai.com/matrixdc/pytorch:2.3.0-python3.10-cuda12.1.0-devel-ubuntu22.04",
    "gpu_sku_id": "66",
    "volume_size": 50,
}
SESTERCE_CREATE = {
    "name": "bench",
    "model_id": "llama-3.1-8b-instruct",
    "hardware_id": "59651ba4-657a-41d4-8c42-00f34f732375",
    "regions": [18],
}
NETMIND_CREATE = {
    "name": "bench",
    "flavor_id": "e5d2b7a96c3f41d08a7e9c2b4d1f6a38",
    "image_url": "python:3.10-slim",
    "port": 8080,
}


async def neolink_fleet(server: SandboxServer, tk: Toolkit, count: int) -> list[str]:
    """`count` more NeoLink instances: one created through the toolkit (journaled), the rest copies."""
    if count <= 0:
        return []
    first = (await tk.call("neolink_create_instance", NEOLINK_CREATE, confirmer=Approve())).resource
    names = fill(server.sandbox, "neolink.instances", first.resource_id, count - 1, "name", _ids("instance-"))
    return [first.resource_id, *names]


async def sesterce_fleet(server: SandboxServer, tk: Toolkit, count: int) -> list[str]:
    if count <= 0:
        return []
    first = (await tk.call("sesterce_create_endpoint", SESTERCE_CREATE, confirmer=Approve())).resource
    ids = fill(server.sandbox, "sesterce.instances", first.resource_id, count - 1, "_id", _ids("5e5"))
    return [first.resource_id, *ids]


async def netmind_fleet(server: SandboxServer, tk: Toolkit, count: int) -> list[str]:
    """`count` more NetMind endpoints, each journaled as created here (NetMind lists them from the
    journal). The first is created through the toolkit unless the sandbox already holds one."""
    if count <= 0:
        return []
    store = server.sandbox.store("netmind.endpoints")
    made: list[str] = []
    if not store:
        first = (await tk.call("netmind_create_endpoint", NETMIND_CREATE, confirmer=Approve())).resource
        made.append(first.resource_id.partition(":")[2])
    ids = fill(
        server.sandbox, "netmind.endpoints", next(iter(store)), count - len(made), "service_id", _ids("e")
    )
    journal_creates(tk.journal, "netmind", [f"endpoint:{i}" for i in ids], "endpoint")
    return [f"endpoint:{i}" for i in made + ids]


_serial = iter(range(10**9))


def _ids(prefix: str) -> Callable[[int], str]:
    return lambda i: f"{prefix}{next(_serial):08x}"


def journal_creates(journal: Journal, provider: str, resource_ids: list[str], kind: str) -> None:
    """Rows as the gate writes them for confirmed creates (through the journal's own methods)."""
    for rid in resource_ids:
        plan = Plan(
            provider=provider,
            operation=f"{provider}_create",
            action="create",
            target=rid,
            method="POST",
            path="/",
            reversible=True,
            reversibility="delete it",
            usd_per_hour=1.0,
        )
        row = journal.record(plan, "create", "unknown")
        journal.finish(row, "ok", resource_id=rid, kind=kind)


def journal_noise(journal: Journal, rows: int) -> None:
    """`rows` journal rows of resources created and deleted long ago (history, nothing live),
    written through the journal's own methods."""
    _noise(journal, rows)


def _noise(journal: Journal, rows: int) -> None:
    start = next(_serial)
    for i in range(start, start + rows // 2):
        rid = f"old-{i}"
        journal_creates(journal, "sesterce", [rid], "endpoint")
        plan = Plan(
            provider="sesterce",
            operation="delete_resource",
            action="delete",
            target=rid,
            method="DELETE",
            path="/",
            reversible=False,
            reversibility="no",
        )
        row = journal.record(plan, "destroy", "unknown")
        journal.finish(row, "ok", resource_id=rid)
