"""Shared set-up for the benchmarks: a sandbox with latency on every provider and a toolkit on it."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from gpu_tools.providers import ADAPTERS
from gpu_tools.sandbox import SandboxServer
from gpu_tools.settings import Settings
from gpu_tools.toolkit import Toolkit


def start(latency: float) -> tuple[SandboxServer, Toolkit]:
    os.environ["GPU_TOOLS_HOME"] = tempfile.mkdtemp(prefix="gpu-bench-")
    server = SandboxServer().start()
    for provider in ADAPTERS:
        httpx.post(f"{server.url}/_sandbox/faults", json={"provider": provider, "latency": latency})
    return server, Toolkit(Settings(provider_timeout=60).for_sandbox(server.url))


async def best_of(runs: int, fn: Callable[[], Awaitable[Any]]) -> float:
    """The fastest of `runs` timings, in seconds (the least disturbed by the machine)."""
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        await fn()
        best = min(best, time.perf_counter() - t0)
    return best
