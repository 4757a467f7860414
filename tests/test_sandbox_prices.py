"""The sandbox's price switch: `POST /_sandbox/prices` moves one provider's price of one GPU model."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gpu_tools.sandbox import SandboxServer
from gpu_tools.toolkit import Toolkit

pytestmark = pytest.mark.anyio


def move(sandbox: SandboxServer, body: Any) -> httpx.Response:
    return httpx.post(f"{sandbox.url}/_sandbox/prices", json=body)


async def usd(tk: Toolkit, provider: str, gpu: str) -> list[float]:
    offers = await tk.call("list_offers", {"provider": provider, "gpu": gpu, "refresh": True})
    return sorted(o.usd_per_hour for o in offers.items if o.usd_per_hour is not None)


@pytest.mark.parametrize(
    ("provider", "gpu", "other"),
    [("neolink", "H100", "4090"), ("sesterce", "H100", "L40S"), ("netmind", "H100", "4090")],
)
async def test_a_factor_moves_that_gpu_only_in_every_region(
    tk: Toolkit, sandbox: SandboxServer, provider: str, gpu: str, other: str
) -> None:
    before, unmoved = await usd(tk, provider, gpu), await usd(tk, provider, other)
    assert before and unmoved
    answer = move(sandbox, {"provider": provider, "gpu": gpu, "factor": 1.1})
    assert answer.status_code == 200 and answer.json()["factor"] == pytest.approx(1.1)
    after = await usd(tk, provider, gpu)
    assert after == pytest.approx([round(p * 1.1, 6) for p in before], abs=0.006)
    assert await usd(tk, provider, other) == unmoved


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"provider": "nebius", "gpu": "H100", "factor": 2}, "no prices in the sandbox"),
        ({"provider": "acme", "gpu": "H100", "factor": 2}, "no prices in the sandbox"),
        ({"provider": "neolink", "gpu": "B200", "factor": 2}, "not priced by neolink"),
        ({"provider": "neolink", "gpu": "H100", "factor": 0}, "factor must be a number"),
        ({"provider": "neolink", "gpu": "H100", "factor": -1}, "factor must be a number"),
        ({"provider": "neolink", "gpu": "H100", "factor": True}, "factor must be a number"),
        ({"provider": "neolink", "gpu": "H100", "factor": "2"}, "factor must be a number"),
        ({"provider": "neolink", "gpu": "H100"}, "send exactly"),
        ([1, 2], "send exactly"),
    ],
)
def test_a_bad_body_is_a_400_with_a_short_message(sandbox: SandboxServer, body: Any, said: str) -> None:
    answer = move(sandbox, body)
    assert answer.status_code == 400 and said in answer.json()["detail"]
    assert sandbox.sandbox.stores.get("sandbox.prices", {}) == {}


def test_a_body_that_is_not_json_is_a_400(sandbox: SandboxServer) -> None:
    answer = httpx.post(f"{sandbox.url}/_sandbox/prices", content=b"{nope")
    assert answer.status_code == 400 and "not JSON" in answer.json()["detail"]
