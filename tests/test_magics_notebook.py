"""Issue 23 through a real InteractiveShell against the sandbox: wording, DataFrames that keep their
meaning, charts, completion of values, regions by name, filters, one cost per resource."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.completer import provisionalcompleter
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from gpu_tools.errors import InvalidInput
from gpu_tools.sandbox import SandboxServer
from gpu_tools.toolkit import Toolkit
from tests.conftest import sandbox_settings


def gpu(shell: InteractiveShell, line: str):
    return shell.run_line_magic("gpu", line)


def complete(shell: InteractiveShell, line: str) -> list[str]:
    with provisionalcompleter():
        return [c.text for c in shell.Completer.completions(line, len(line))]


# ---- wording ----------------------------------------------------------------------------------
def test_no_offers_names_the_filter_and_the_known_gpus(shell: InteractiveShell) -> None:
    text = repr(gpu(shell, "list-offers --gpu Z999"))
    assert "No GPU offers found for --gpu Z999." in text
    assert "GPU models known here:" in text and "H100" in text


def test_duration_error_reads_as_a_sentence(shell: InteractiveShell) -> None:
    line = (
        "nebius-create-endpoint --name x --model-name openai/gpt-oss-20b --flavor-name base "
        "--gpu-type gpu-h100-sxm --expires-in 3x --dry-run"
    )
    with pytest.raises(InvalidInput, match="expires_in must be a number and a unit"):
        gpu(shell, line)


def test_estimate_footnote_never_converts_usd_to_usd() -> None:
    from gpu_tools.models import Offer
    from ipython_ext.render import estimate_note

    def offer(currency: str) -> Offer:
        return Offer(
            provider="p",
            kind="instance",
            offer_id="o",
            gpu_name="H100",
            currency=currency,
            price_estimated=True,
        )

    assert estimate_note([offer("USD")]) == (
        "~ estimated: a price from your settings, not one the provider published."
    )
    assert "from USD" not in estimate_note([offer("USD"), offer("CNY")])
    assert "converted to USD from CNY" in estimate_note([offer("CNY")])


# ---- DataFrames that keep their meaning -------------------------------------------------------
def test_dataframe_times_details_and_attrs(shell: InteractiveShell) -> None:
    offers = gpu(shell, "list-offers --gpu H100")
    frame = offers.to_dataframe()
    assert str(frame["price_as_of"].dtype) == "datetime64[ns, UTC]"
    assert "details" not in frame.columns and not any(c.startswith("details.") for c in frame.columns)
    assert frame.attrs["caption"] == "GPU offers"
    assert frame.attrs["footnotes"] == [
        "~ estimated: converted to USD from CNY at the configured exchange rate."
    ]
    assert frame.attrs["providers"]["neolink"] == "ok"
    wide = gpu(shell, "list-offers --gpu H100 --all-columns").to_dataframe()
    assert "details.region_name" in wide.columns  # Sesterce's region, flattened
    history = gpu(shell, "history").to_dataframe()
    assert str(history["at"].dtype) == "datetime64[ns, UTC]"


def test_empty_listing_under_autopandas_has_columns_and_message(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_line_magic("config", "GpuMagics.autopandas = True")
    frame = gpu(shell, "list-offers --gpu Z999")
    assert frame.empty and {"provider", "usd_per_hour", "price_as_of"} <= set(frame.columns)
    assert frame.attrs["message"].startswith("No GPU offers found for --gpu Z999.")
    assert "No GPU offers found" in capsys.readouterr().out
    assert str(frame["price_as_of"].dtype) == "datetime64[ns, UTC]"


def test_dir_offers_the_result_fields(shell: InteractiveShell) -> None:
    offers = gpu(shell, "list-offers --gpu H100")
    assert {"items", "providers", "notes", "plot", "to_dataframe"} <= set(dir(offers))
    assert "parse_obj" not in dir(offers)  # pydantic's own machinery is not offered
    ep = gpu(
        shell,
        "nebius-create-endpoint --name d --model-name openai/gpt-oss-20b --flavor-name base "
        "--gpu-type gpu-h100-sxm --yes",
    )
    assert {"resource", "plan", "outcome"} <= set(dir(ep))
    shell.user_ns["ep"] = ep
    assert {"resource", "plan", "outcome"} <= {c.rsplit(".", 1)[-1] for c in complete(shell, "ep.")}
    shell.user_ns["offers"] = offers
    assert {"items", "providers"} <= {c.rsplit(".", 1)[-1] for c in complete(shell, "offers.")}


# ---- charts -----------------------------------------------------------------------------------
NEOLINK_IMAGE = "images.neolink-ai.com/matrixdc/pytorch:2.3.0-python3.10-cuda12.1.0-devel-ubuntu22.04"


@pytest.fixture
def agg() -> Iterator[Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def caption_of(ax: Any) -> str:
    return "\n".join(t.get_text() for t in ax.figure.texts)


def test_offers_plot_by_gpu_with_a_legend_estimates_and_faded_offers(
    shell: InteractiveShell, agg: Any
) -> None:
    offers = gpu(shell, "list-offers --gpu H100")
    ax = offers.plot()
    assert ax.get_title() == "[SANDBOX] GPU offers: price per GPU-hour"
    assert ax.get_xlabel() == "USD per GPU-hour ($/GPU-h)" and ax.get_ylabel()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"netmind", "sesterce", "neolink", "estimated (~)", "not available now"} <= set(legend)
    bars = ax.patches
    assert any(b.get_hatch() == "///" for b in bars)  # NeoLink's converted prices
    assert any(b.get_alpha() == 0.3 for b in bars)  # an offer that cannot be rented now
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert any("北京一区" in label for label in labels)
    text = caption_of(ax)
    assert "Prices fetched" in text and "converted to USD from CNY" in text
    assert "no price published: nebius" in text
    import io

    png = io.BytesIO()
    ax.figure.savefig(png, format="png")
    assert png.getvalue()[:4] == b"\x89PNG"


def test_charts_without_matplotlib_name_the_extra(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins

    from ipython_ext.frames import MissingExtra

    offers = gpu(shell, "list-offers --gpu H100")
    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(MissingExtra, match=r"pip install 'gpu-tools\[notebook\]'") as caught:
        offers.plot()
    assert len(caught.value._render_traceback_()) == 1


def test_spend_over_time_after_a_create_and_a_delete(
    shell: InteractiveShell, sandbox: SandboxServer, agg: Any
) -> None:
    h100s = gpu(shell, "list-offers --gpu H100 --provider neolink --sort usd_per_hour")
    shell.user_ns["sku"] = next(o for o in h100s if o.gpu_count == 1).offer_id
    vm = gpu(shell, f"neolink-create-instance --name s --image {NEOLINK_IMAGE} --gpu-sku-id {{sku}} --yes")
    shell.user_ns["vm"] = vm
    gpu(shell, "rm neolink {vm.resource.resource_id} --yes")
    shell._gpu_magics._replace_toolkit(Toolkit(sandbox_settings(sandbox, budget_usd_per_day=40)))
    report = gpu(shell, "spend --over 7d")
    assert report.history_over == "7d"
    neolink = [p for p in report.history if p.provider == "neolink"]
    assert neolink and neolink[-1].usd >= 0 and report.history[-1].provider == "total"
    assert [p.usd for p in neolink] == sorted(p.usd for p in neolink)  # cumulative
    assert "Spent in the last 7d" in repr(report)
    ax = report.plot()
    assert ax.get_title() == "[SANDBOX] Spend over time, last 7d"
    assert ax.get_ylabel() == "cumulative spend (USD)" and ax.get_xlabel() == "time (UTC)"
    assert {line.get_label() for line in ax.get_lines()} >= {"neolink", "total"}
    assert any(line.get_ydata()[0] == 40 for line in ax.get_lines())  # the budget
    assert "budget_usd_per_day $40.00" in " ".join(t.get_text() for t in ax.texts)
    assert "From the journal" in caption_of(ax)
    with pytest.raises(InvalidInput, match="over must be a number and a unit"):
        gpu(shell, "spend --over soon")


def test_spend_series_replays_create_stop_start_update_delete() -> None:
    from datetime import UTC, datetime, timedelta

    from gpu_tools.spend_history import spend_series

    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def at(hours: float) -> str:
        return (t0 + timedelta(hours=hours)).isoformat()

    rows = [
        (1, at(-2), "neolink", "neolink_create_instance", "create", "a", 2.0, "instance", "ok"),
        (2, at(1), "neolink", "stop_resource", "update", "a", None, None, "ok"),
        (3, at(2), "neolink", "start_resource", "update", "a", None, None, "ok"),
        (4, at(3), "neolink", "update_resource", "update", "a", 4.0, None, "ok"),
        (5, at(4), "neolink", "delete_resource", "destroy", "a", None, None, "ok"),
        (6, at(1), "sesterce", "sesterce_create_instance", "create", "b", 1.0, "instance", "ok"),
        (7, at(2), "sesterce", "create_volume", "create", "v", 9.0, "volume", "ok"),  # not billable
    ]
    rows.sort(key=lambda r: r[1])
    points = spend_series(rows, t0, t0 + timedelta(hours=5))
    final = {p.provider: p.usd for p in points if p.at == at(5)}
    # neolink: 1 h at $2 (from the period's start), stopped 1 h, 1 h at $2, 1 h at $4, then deleted
    assert final == {"neolink": 8.0, "sesterce": 4.0, "total": 12.0}
    totals = [p.usd for p in points if p.provider == "total"]
    assert totals == sorted(totals) and totals[0] == 0.0
    only = spend_series(rows, t0, t0 + timedelta(hours=5), provider="sesterce")
    assert {p.provider for p in only} == {"sesterce", "total"}


@pytest.mark.anyio
async def test_mcp_spend_takes_over(sandbox: SandboxServer) -> None:
    from mcp import Client

    from mcp_server import build_server
    from tests.mcp_helpers import structured

    async with Client(build_server(sandbox_settings(sandbox))) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert "over" in tools["spend"].input_schema["properties"]
        got = structured(await client.call_tool("spend", {"over": "24h"}))
    assert got["history_over"] == "24h" and got["history"][-1]["provider"] == "total"


# ---- one cost per resource, regions by name -----------------------------------------------------
def test_one_cost_for_a_resource_in_every_view(shell: InteractiveShell, sandbox: SandboxServer) -> None:
    h100s = gpu(shell, "list-offers --gpu H100 --provider neolink --sort usd_per_hour")
    offer = next(o for o in h100s if o.gpu_count == 1)
    shell.user_ns["sku"] = offer.offer_id
    vm = gpu(shell, f"neolink-create-instance --name c --image {NEOLINK_IMAGE} --gpu-sku-id {{sku}} --yes")
    planned = vm.plan.usd_per_hour
    assert planned == offer.usd_per_hour
    shell.user_ns["vm"] = vm
    got = gpu(shell, "get neolink {vm.resource.resource_id}")
    waited = gpu(shell, "wait neolink {vm.resource.resource_id}")
    listed = gpu(shell, "ls --provider neolink")
    spent = gpu(shell, "spend")
    rid = vm.resource.resource_id
    row = next(r for r in listed if r.resource_id == rid)
    line = next(s for s in spent.items if s.resource_id == rid)
    assert got.usd_per_hour == waited.usd_per_hour == row.usd_per_hour == line.usd_per_hour == planned
    assert got.price_source == row.price_source == line.price_source == "journal"
    card = f"~${planned:.2f}/hour (the plan's estimate, journaled at creation)"
    assert card in repr(got) and card in repr(waited)
    assert f"~${planned:.2f}" in repr(listed) and "journaled at creation" in repr(listed)
    gpu(shell, "rm neolink {vm.resource.resource_id} --yes")


@pytest.mark.anyio
async def test_mcp_results_show_the_same_cost(sandbox: SandboxServer) -> None:
    from mcp import Client

    from mcp_server import build_server
    from tests.mcp_helpers import Human, structured

    create = {"display_name": "cost", "image": NEOLINK_IMAGE, "gpu_sku_id": "88"}
    async with Client(build_server(sandbox_settings(sandbox)), elicitation_callback=Human()) as client:
        made = structured(await client.call_tool("neolink_create_instance", create))
        ref = {"provider": "neolink", "resource_id": made["resource"]["resource_id"]}
        got = structured(await client.call_tool("get_resource", ref))
        waited = structured(await client.call_tool("wait_for_resource", {**ref, "poll_seconds": 0.05}))
        listed = structured(await client.call_tool("list_resources", {"provider": "neolink"}))
        spent = structured(await client.call_tool("spend", {}))
    planned = made["plan"]["usd_per_hour"]
    row = next(r for r in listed["items"] if r["resource_id"] == ref["resource_id"])
    line = next(r for r in spent["items"] if r["resource_id"] == ref["resource_id"])
    assert planned and got["usd_per_hour"] == waited["usd_per_hour"] == row["usd_per_hour"] == planned
    assert line["usd_per_hour"] == planned
    assert (
        got["price_source"]
        == waited["price_source"]
        == row["price_source"]
        == line["price_source"]
        == "journal"
    )


def test_regions_by_name(shell: InteractiveShell) -> None:
    offers = gpu(shell, "list-offers --provider sesterce")
    regions = {o.region for o in offers}
    assert "Frankfurt" in regions and not any(r and r.isdigit() for r in regions)
    frankfurt = gpu(shell, "list-offers --region frankfurt")
    assert len(frankfurt) and all(o.region == "Frankfurt" for o in frankfurt)
    by_id = gpu(shell, f"list-offers --region {frankfurt[0].region_id}")
    assert {o.offer_id for o in by_id} == {o.offer_id for o in frankfurt}


# ---- filters on both fronts -------------------------------------------------------------------
def test_several_providers_and_price_and_gpu_count_caps(shell: InteractiveShell) -> None:
    offers = gpu(shell, "list-offers --provider sesterce,NetMind --max-usd-per-hour 3 --max-gpu-count 1")
    assert len(offers) and {o.provider for o in offers} == {"sesterce", "netmind"}
    assert all(o.usd_per_hour is not None and o.usd_per_hour <= 3 for o in offers)
    assert all((o.gpu_count or 1) <= 1 for o in offers)
    assert {p.provider for p in offers.providers} == {"sesterce", "netmind"}  # the others not asked
    with pytest.raises(UsageError, match="invalid choice: bogus"):
        gpu(shell, "list-offers --provider sesterce,bogus")


@pytest.mark.anyio
async def test_mcp_list_offers_takes_several_providers_and_caps(sandbox: SandboxServer) -> None:
    from mcp import Client

    from mcp_server import build_server
    from tests.mcp_helpers import structured

    async with Client(build_server(sandbox_settings(sandbox))) as client:
        props = {t.name: t for t in (await client.list_tools()).tools}["list_offers"].input_schema[
            "properties"
        ]
        assert {"max_usd_per_hour", "max_gpu_count", "provider"} <= set(props)
        as_list = structured(
            await client.call_tool(
                "list_offers",
                {"provider": ["sesterce", "neolink"], "max_usd_per_hour": 2, "max_gpu_count": 1},
            )
        )
        as_text = structured(await client.call_tool("list_offers", {"provider": "sesterce,neolink"}))
        one = structured(await client.call_tool("list_offers", {"provider": "netmind"}))
    assert as_list["items"] and {o["provider"] for o in as_list["items"]} <= {"sesterce", "neolink"}
    assert all(o["usd_per_hour"] <= 2 and (o["gpu_count"] or 1) == 1 for o in as_list["items"])
    assert {o["provider"] for o in as_text["items"]} == {"sesterce", "neolink"}
    assert {o["provider"] for o in one["items"]} == {"netmind"}


# ---- completion of values ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("%gpu list-offers --gpu H1", {"H100"}),
        ("%gpu list-offers --gpu RT", {'"RTX 4090"'}),
        ("%gpu list-offers --sort -usd", {"-usd_per_hour", "-usd_per_gpu_hour"}),
        ("%gpu list-offers --columns provider,gpu_m", {"provider,gpu_model", "provider,gpu_memory_gb"}),
        ("%gpu list-offers --region Fr", {"Frankfurt"}),
        ("%gpu list-offers --provider sesterce --region Si", {"Singapore"}),
        (
            "%gpu list-offers --provider sesterce,ne",
            {"sesterce,nebius", "sesterce,neolink", "sesterce,netmind"},
        ),
        ("%gpu nebius-create-endpoint --model-name openai/", {"openai/gpt-oss-20b"}),
        ("%gpu nebius-create-endpoint --gpu-type gpu-h", {"gpu-h100-sxm", "gpu-h200-sxm"}),
        ("%gpu neolink-create-instance --gpu-sku-id 8", {"88", "89"}),
    ],
)
def test_completion_of_values(shell: InteractiveShell, line: str, expected: set[str]) -> None:
    found = complete(shell, line)
    assert expected <= set(found), found
    assert "False" not in found and "lambda" not in found  # no Python keywords
