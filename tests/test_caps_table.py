"""Every action that raises the hourly cost meets every money cap; nothing else is refused by them.

One row per mutating operation of every provider (the unified lifecycle operations once per provider
that has the capability), each run against each of the four money caps set far below any price:
a row that raises what is live per hour (a create, a start, a scale-up, a GPU change) is refused
before anyone is asked, journaled, and sends nothing; a row that does not (a stop, a delete, a
scale-down, a registry) is sent once. `test_every_mutating_operation_has_a_row` fails when an
operation is added to the registry without a row here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gpu_tools import errors
from gpu_tools.gate import Approve
from gpu_tools.models import MutationResult
from gpu_tools.sandbox import SandboxServer
from gpu_tools.sandbox.sesterce import H100_1
from gpu_tools.toolkit import Toolkit, registry
from tests.conftest import mutating_requests, sandbox_settings

pytestmark = pytest.mark.anyio

CAPS = ["max_usd_per_hour", "max_total_usd_per_hour", "budget_usd_per_day", "budget_usd_total"]
TIGHT = 0.01  # dollars (per hour, or in all): below the price of any GPU
PRICES = {"nebius_gpu_usd_per_hour": {"gpu-h100-sxm": 6.0, "gpu-h200-sxm": 9.0}}
UNIFIED = {"update_resource": "update", "stop_resource": "stop", "start_resource": "start"}
UNIFIED |= {"delete_resource": "delete", "reap_expired": "delete"}

NEBIUS = {"name": "t", "model_name": "openai/gpt-oss-20b", "flavor_name": "base", "gpu_type": "gpu-h100-sxm"}
SESTERCE = {
    "name": "t",
    "model_id": "llama-3.1-8b-instruct",
    "hardware_id": H100_1,
    "regions": [{"region_id": 78, "min": 1, "max": 1}],
}
IMAGE = "images.neolink-ai.com/matrixdc/pytorch:2.3.0-python3.10-cuda12.1.0-devel-ubuntu22.04"
NEOLINK = {"display_name": "t", "image": IMAGE, "gpu_sku_id": "88"}
NETMIND_ENDPOINT = {
    "name": "t",
    "flavor_id": "e5d2b7a96c3f41d08a7e9c2b4d1f6a38",
    "image_url": "python:3.10-slim",
    "port": 8080,
}
REGISTRY = {"name": "r", "url": "docker.io/acme/a:1", "username": "acme", "password": "registry-pw-77"}
IMAGE_ARGS = {"name": "n", "image_name": "a/b", "image_tag": "1", "image_label": "x"}


async def done(tk: Toolkit, name: str, args: dict[str, Any]) -> MutationResult:
    result = await tk.call(name, args, confirmer=Approve())
    assert isinstance(result, MutationResult) and result.outcome == "done", result
    return result


async def netmind_container(tk: Toolkit) -> dict[str, Any]:
    auth = await done(tk, "netmind_create_auth", {"value": "sandbox-ssh-pass"})
    return {
        "name": "t",
        "auth_id": auth.detail["auth_id"],  # type: ignore[index]
        "node_name": "sbx-us-h100-01",
        "image_template_id": 1,
    }


CREATES: dict[str, tuple[str, Callable[[Toolkit], Awaitable[dict[str, Any]]]]] = {}


async def _static(args: dict[str, Any]) -> dict[str, Any]:
    return dict(args)


def _creator(name: str, args: dict[str, Any]) -> tuple[str, Callable[[Toolkit], Awaitable[dict[str, Any]]]]:
    return name, lambda tk: _static(args)


CREATES = {
    "nebius": _creator("nebius_create_endpoint", NEBIUS),
    "sesterce": _creator("sesterce_create_endpoint", SESTERCE),
    "neolink": _creator("neolink_create_instance", NEOLINK),
    "netmind": ("netmind_create_container", netmind_container),
    "netmind-endpoint": _creator("netmind_create_endpoint", NETMIND_ENDPOINT),
}


async def made(tk: Toolkit, which: str, **extra: Any) -> dict[str, Any]:
    """A resource made without caps; its reference for the lifecycle operations."""
    name, args = CREATES[which]
    result = await done(tk, name, {**(await args(tk)), **extra})
    assert result.resource is not None
    return {"provider": result.resource.provider, "resource_id": result.resource.resource_id}


async def stopped(tk: Toolkit, which: str) -> dict[str, Any]:
    ref = await made(tk, which)
    await done(tk, "stop_resource", ref)
    return ref


async def expired(tk: Toolkit, which: str) -> dict[str, Any]:
    """A resource whose expiry has passed (written into the journal: no test waits for a clock)."""
    ref = await made(tk, which, expires_in="1h")
    past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat(timespec="seconds")
    with tk.journal._tx() as db:
        db.execute("UPDATE journal SET expires_at=? WHERE resource_id=?", (past, ref["resource_id"]))
        tk.journal.rebuild_kept(db)  # the live set keeps each create's expiry
    return {"provider": ref["provider"]}


@dataclass
class Row:
    operation: str
    provider: str
    raises: bool
    setup: Callable[[Toolkit], Awaitable[dict[str, Any]]]
    sends: int = 1  # mutating requests the operation sends when allowed
    variant: str = ""

    @property
    def id(self) -> str:
        return f"{self.operation}-{self.provider}" + (f"-{self.variant}" if self.variant else "")


def create_row(provider: str, which: str | None = None) -> Row:
    name, args = CREATES[which or provider]
    return Row(name, provider, True, args)


def ref_then(
    which: str, make: Callable[[Toolkit, str], Awaitable[dict[str, Any]]] = made, **extra: Any
) -> Callable[[Toolkit], Awaitable[dict[str, Any]]]:
    async def setup(tk: Toolkit) -> dict[str, Any]:
        return {**(await make(tk, which)), **extra}

    return setup


async def sesterce_bigger(tk: Toolkit) -> dict[str, Any]:
    ref = await made(tk, "sesterce")
    return {"resource_id": ref["resource_id"], "regions": [{"region_id": 78, "min": 1, "max": 3}]}


async def registry_ref(tk: Toolkit) -> dict[str, Any]:
    made = await done(tk, "sesterce_create_registry", REGISTRY)
    return {"registry_id": made.detail["registry_id"]}  # type: ignore[index]


async def registry_update(tk: Toolkit) -> dict[str, Any]:
    return {
        **(await registry_ref(tk)),
        "url": "docker.io/acme/a:2",
        "username": "bot",
        "password": "pw-2-two",
    }


async def nebius_big(tk: Toolkit) -> dict[str, Any]:
    return {**(await made(tk, "nebius", max_replicas=3)), "max_replicas": 1}


ROWS = [
    # creates: billable ones raise the hourly cost, the others (registries, keys, images) do not
    create_row("nebius"),
    create_row("sesterce"),
    create_row("neolink"),
    create_row("netmind"),
    create_row("netmind", "netmind-endpoint"),
    Row("sesterce_create_registry", "sesterce", False, lambda tk: _static(REGISTRY)),
    Row("netmind_create_auth", "netmind", False, lambda tk: _static({"value": "another-pass"})),
    Row("netmind_create_image", "netmind", False, lambda tk: _static(IMAGE_ARGS)),
    # updates: a scale-up or a pricier GPU raises, a scale-down does not
    Row("update_resource", "nebius", True, ref_then("nebius", max_replicas=3)),
    Row("update_resource", "nebius", True, ref_then("nebius", gpu_type="gpu-h200-sxm"), variant="gpu"),
    Row("update_resource", "nebius", False, nebius_big, variant="down"),
    Row("update_resource", "sesterce", True, ref_then("sesterce", replicas=3)),
    Row("update_resource", "netmind", True, ref_then("netmind-endpoint", replicas=2)),
    Row("sesterce_update_endpoint", "sesterce", True, sesterce_bigger),
    Row("sesterce_update_registry", "sesterce", False, registry_update),
    # starts raise what is live (a stopped resource costs nothing); stops and deletes never do
    *[
        Row("start_resource", p, True, ref_then(p, stopped))
        for p in ("nebius", "sesterce", "neolink", "netmind")
    ],
    *[Row("stop_resource", p, False, ref_then(p)) for p in ("nebius", "sesterce", "neolink", "netmind")],
    *[Row("delete_resource", p, False, ref_then(p)) for p in ("nebius", "sesterce", "neolink", "netmind")],
    *[
        Row("reap_expired", p, False, ref_then(p, expired))
        for p in ("nebius", "sesterce", "neolink", "netmind")
    ],
    Row("sesterce_delete_registry", "sesterce", False, registry_ref),
]


def test_every_mutating_operation_has_a_row() -> None:
    """The registry's mutating operations, each provider's own and the unified ones once per provider
    with the capability, are exactly the table's rows."""
    from gpu_tools.providers import ADAPTERS

    wanted = set()
    for op in registry():
        if not op.mutating:
            continue
        if op.provider is not None:
            wanted.add((op.name, op.provider))
        else:
            assert op.name in UNIFIED, f"{op.name}: a new unified mutation needs rows in ROWS and UNIFIED"
            wanted |= {(op.name, p) for p, a in ADAPTERS.items() if UNIFIED[op.name] in a.capabilities}
    assert {(r.operation, r.provider) for r in ROWS} == wanted


@pytest.mark.parametrize("cap", CAPS)
@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
async def test_every_mutation_against_every_money_cap(sandbox: SandboxServer, row: Row, cap: str) -> None:
    sandbox.sandbox.ready_after = 0  # stops and starts settle at once
    free = Toolkit(sandbox_settings(sandbox, **PRICES))
    args = await row.setup(free)
    free.close()
    tight = Toolkit(sandbox_settings(sandbox, **PRICES, **{cap: TIGHT}))
    before = len(mutating_requests(sandbox))
    refused_before = len(tight.journal.entries(outcome="refused")[0])

    question = await tight.question(row.operation, args)
    if row.raises:
        assert question is None  # refused before anyone is asked
        with pytest.raises(errors.PolicyRefused, match=cap) as refused:
            await tight.call(row.operation, args, confirmer=Approve())
        assert "Nothing was sent" in str(refused.value)
        assert len(mutating_requests(sandbox)) == before
        refusals = tight.journal.entries(outcome="refused")[0]
        assert len(refusals) == refused_before + 1 and cap in (refusals[0].error or "")
    else:
        assert question is not None
        result = await tight.call(row.operation, args, confirmer=Approve(), approval_id=question.approval.id)
        assert result.outcome == "done"
        assert len(mutating_requests(sandbox)) == before + row.sends
    tight.close()
