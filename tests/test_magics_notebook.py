"""Issue 23 through a real InteractiveShell against the sandbox: wording, DataFrames that keep their
meaning, charts, completion of values, regions by name, filters, one cost per resource."""

from __future__ import annotations

import pytest
from IPython.core.completer import provisionalcompleter
from IPython.core.interactiveshell import InteractiveShell

from gpu_tools.errors import InvalidInput


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
