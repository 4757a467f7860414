"""Price history: prices recorded whenever offers are fetched (journal version 7, both backends), read
back by the `price_history` tool and `%gpu prices`, drawn as steps. A sandbox price moved between two
fetches shows as two observations of the same offer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from mcp import Client

from gpu_tools.journal import SCHEMA_VERSION, Journal, PostgresJournal, SqliteJournal
from gpu_tools.models import PricePoint
from gpu_tools.sandbox import SandboxServer
from gpu_tools.toolkit import Toolkit
from mcp_server import build_server
from tests.clock import FakeClock
from tests.conftest import new_shell, sandbox_settings
from tests.mcp_helpers import error_text, structured

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("journal_backend")]

MOVE = {"provider": "sesterce", "gpu": "H100", "factor": 1.1}


def move_price(sandbox: SandboxServer, body: dict[str, Any] = MOVE) -> None:
    answer = httpx.post(f"{sandbox.url}/_sandbox/prices", json=body)
    assert answer.status_code == 200, answer.text


def point(at: str, usd: float, **kw: Any) -> PricePoint:
    fields: dict[str, Any] = {
        "at": at,
        "seen_at": at,
        "provider": "sesterce",
        "gpu": "H100",
        "gpu_count": 1,
        "region": "Frankfurt",
        "region_id": "36",
        "offer_id": "o1",
        "kind": "endpoint",
        "usd_per_hour": usd,
        "usd_per_gpu_hour": usd,
    }
    return PricePoint(**{**fields, **kw})


def rows(journal: Journal) -> list[tuple[Any, ...]]:
    with journal._read() as db:
        return [
            tuple(r)
            for r in db.execute("SELECT at, seen_at, usd_per_hour FROM price_observations ORDER BY id")
        ]


@pytest.fixture
def target(journal_backend: str, gpu_home: Path) -> str:
    import os

    if journal_backend == "postgresql":
        return os.environ["GPU_TOOLS_JOURNAL_URL"]
    gpu_home.mkdir(parents=True, exist_ok=True)
    return str(gpu_home / "journal.sqlite3")


# ---- the journal ------------------------------------------------------------------------------
def test_a_price_is_stored_only_when_it_differs_from_the_last_one_kept(target: str) -> None:
    journal = Journal.open(target)
    assert journal.record_prices([point("2026-12-01T10:00:00+00:00", 2.85)]) == 1
    # seen again, unchanged: no new row, the row was seen later
    assert journal.record_prices([point("2026-12-01T11:00:00+00:00", 2.85)]) == 0
    assert rows(journal) == [("2026-12-01T10:00:00+00:00", "2026-12-01T11:00:00+00:00", 2.85)]
    # a change, then back: each is a step; another offer's same price is its own series
    assert journal.record_prices([point("2026-12-01T12:00:00+00:00", 3.135)]) == 1
    assert journal.record_prices([point("2026-12-01T13:00:00+00:00", 2.85)]) == 1
    assert (
        journal.record_prices([point("2026-12-01T13:00:00+00:00", 2.85, region="Chicago", region_id="52")])
        == 1
    )
    assert [r[2] for r in rows(journal)] == [2.85, 3.135, 2.85, 2.85]
    found, total = journal.price_points("2026-12-01T00:00:00+00:00", gpu="H100", region="frankfurt")
    assert total == 3 and [p.usd_per_hour for p in found] == [2.85, 3.135, 2.85]
    by_id, _ = journal.price_points("2026-12-01T00:00:00+00:00", gpu="h100", region="52")
    assert [p.region for p in by_id] == ["Chicago"]
    # a step last seen before the period is left out; one still seen in it is kept
    later, _ = journal.price_points("2026-12-01T11:30:00+00:00", gpu="H100", region="Frankfurt")
    assert [p.usd_per_hour for p in later] == [3.135, 2.85]
    assert journal.price_points("2026-12-01T00:00:00+00:00", gpu="H200")[1] == 0
    assert journal.last_price_fetch() == "2026-12-01T13:00:00+00:00"
    journal.close()


def test_a_version_6_journal_gains_the_price_table_in_place(target: str) -> None:
    old = (
        PostgresJournal(target, schema_version=6)
        if target.startswith("postgresql://")
        else SqliteJournal(Path(target), schema_version=6)
    )
    assert old.schema_version() == 6
    old.close()
    journal = Journal.open(target)
    assert journal.schema_version() == SCHEMA_VERSION >= 7
    assert journal.record_prices([point("2026-12-01T10:00:00+00:00", 2.85)]) == 1
    journal.close()
    again = Journal.open(target)  # the statements are idempotent: a second open changes nothing
    assert again.schema_version() == SCHEMA_VERSION and len(rows(again)) == 1
    again.close()


# ---- through the fronts -----------------------------------------------------------------------
@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def priced_shell(sandbox: SandboxServer, clock: FakeClock) -> Iterator[InteractiveShell]:
    shell = new_shell()
    shell._gpu_magics._replace_toolkit(Toolkit(sandbox_settings(sandbox), now=clock))
    yield shell
    shell.extension_manager.unload_extension("ipython_ext")


def sesterce_series(points: list[Any]) -> dict[str, list[Any]]:
    series: dict[str, list[Any]] = {}
    for p in points:
        if p.provider == "sesterce":
            series.setdefault(p.key, []).append(p)
    return series


def test_gpu_prices_lists_two_observations_after_a_sandbox_price_moved(
    priced_shell: InteractiveShell, sandbox: SandboxServer, clock: FakeClock
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    run = priced_shell.run_line_magic
    run("gpu", "offers --gpu H100")
    first = clock()
    clock.advance(3600)
    move_price(sandbox)
    run("gpu", "offers --gpu H100 --refresh")
    clock.advance(600)
    run("gpu", "offers --gpu H100 --refresh")  # unchanged: no new observation
    sandbox.sandbox.requests.clear()
    history = run("gpu", "prices --gpu H100")
    series = sesterce_series(list(history))
    assert series and all(len(s) == 2 for s in series.values()), series
    for old, new in series.values():
        assert new.usd_per_hour == pytest.approx(old.usd_per_hour * 1.1, abs=0.006)
        assert old.at == first.isoformat(timespec="seconds")
        assert new.at == (first + timedelta(hours=1)).isoformat(timespec="seconds")
        assert new.seen_at == clock().isoformat(timespec="seconds")  # the third fetch saw it again
    # other providers' prices did not move: one observation each
    others = [p for p in history if p.provider != "sesterce"]
    assert others and len({p.key for p in others}) == len(others)
    # the offers were in the cache: the history asked no provider again
    assert sandbox.sandbox.requests == []
    text = repr(history)
    assert "Price history" in text and "first seen (UTC)" in text and "$/GPU-h" in text
    assert first.strftime("%Y-%m-%d %H:%M:%S") in text and "+00:00" not in text
    frame = history.to_dataframe()
    assert (
        str(frame["at"].dtype) == "datetime64[ns, UTC]"
        and str(frame["seen_at"].dtype) == "datetime64[ns, UTC]"
    )
    assert {"provider", "gpu", "region", "usd_per_gpu_hour"} <= set(frame.columns)
    assert frame.attrs["caption"] == "Price history" and frame.attrs["sandbox"] is True
    ax = history.plot()
    assert ax.get_title() == "[SANDBOX] Price history: H100, last 30d"
    assert ax.get_xlabel() == "time (UTC)" and "$/GPU-h" in ax.get_ylabel()
    caption = " ".join(t.get_text() for t in ax.figure.texts)
    assert "recorded whenever offers are fetched" in caption and "last fetched" in caption
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(label.startswith("sesterce H100") and "Frankfurt" in label for label in legend)
    assert len(ax.get_lines()) >= 2 * len(legend)  # a step line and its dots per offer
    # autopandas: a DataFrame straight away
    priced_shell._gpu_magics.autopandas = True
    assert str(run("gpu", "prices --gpu H100 --provider sesterce --over 2h")["at"].dtype).startswith(
        "datetime64"
    )


def test_gpu_prices_refuses_bad_input_before_anything_is_fetched(
    priced_shell: InteractiveShell, sandbox: SandboxServer
) -> None:
    run = priced_shell.run_line_magic
    with pytest.raises(UsageError, match="--gpu"):
        run("gpu", "prices")
    from gpu_tools.errors import InvalidInput

    with pytest.raises(InvalidInput, match="over must be a number and a unit"):
        run("gpu", "prices --gpu H100 --over soon")
    assert sandbox.sandbox.requests == []
    empty = run("gpu", "prices --gpu B200 --over 1h")
    assert "No price history found." in repr(empty)
    assert "No price of B200 was seen in the last 1h" in repr(empty) and "%gpu offers" in repr(empty)


async def test_price_history_tool_lists_both_prices_through_mcp_client(
    sandbox: SandboxServer, clock: FakeClock
) -> None:
    tk = Toolkit(sandbox_settings(sandbox), now=clock)
    async with Client(build_server(toolkit=tk)) as client:
        await client.call_tool("list_offers", {"gpu": "H100"})
        clock.advance(3600)
        move_price(sandbox)
        await client.call_tool("list_offers", {"gpu": "H100", "refresh": True})
        result = await client.call_tool(
            "price_history", {"gpu": "H100", "over": "7d", "provider": ["sesterce"]}
        )
        bad = await client.call_tool("price_history", {"gpu": "H100", "over": "-1d"})
        unknown = await client.call_tool("price_history", {"gpu": "H100", "days": 7})
    data = structured(result)
    assert data["gpu"] == "H100" and data["over"] == "7d" and data["sandbox"] is True
    points = [PricePoint(**p) for p in data["items"]]
    series = sesterce_series(points)
    assert series and all(len(s) == 2 for s in series.values())
    assert {p.provider for p in points} == {"sesterce"}
    assert bad.is_error and "over" in error_text(bad)
    assert unknown.is_error and "unknown argument 'days'" in error_text(unknown)
    tk.close()


def test_an_offer_listed_twice_in_one_fetch_keeps_one_price(gpu_home: Path) -> None:
    from datetime import UTC, datetime

    from gpu_tools.models import Offer
    from gpu_tools.price_history import observations

    offer = Offer(
        provider="netmind",
        kind="endpoint",
        offer_id="f1",
        gpu_name="NVIDIA_H100_SXM5_80GB",
        gpu_count=1,
        region="cn",
        price=2.0,
        currency="USD",
        usd_per_hour=2.0,
    )
    twice = [offer, offer.model_copy(update={"price": 2.5, "usd_per_hour": 2.5})]
    points = observations(twice, datetime(2026, 12, 1, 10, tzinfo=UTC))
    assert [(p.gpu, p.usd_per_hour, p.usd_per_gpu_hour, p.price) for p in points] == [
        ("H100", 2.0, 2.0, None)
    ]


async def test_the_history_keeps_to_allowed_providers(sandbox: SandboxServer, clock: FakeClock) -> None:
    everyone = Toolkit(sandbox_settings(sandbox), now=clock)
    await everyone.call("list_offers", {"gpu": "H100"})
    everyone.close()
    only = Toolkit(sandbox_settings(sandbox, allowed_providers=["netmind"]), now=clock)
    shown = await only.call("price_history", {"gpu": "H100"})
    assert shown.items and {p.provider for p in shown.items} == {"netmind"}  # type: ignore[attr-defined]
    from gpu_tools.errors import PolicyRefused

    with pytest.raises(PolicyRefused, match="allowed_providers"):
        await only.call("price_history", {"gpu": "H100", "provider": "sesterce"})
    only.close()
