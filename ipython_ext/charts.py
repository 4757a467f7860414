"""Charts of `%gpu` results (matplotlib, from the `notebook` extra): offers by $ per GPU-hour, spend
over time, price history. Each has a title, axis labels with units and a caption saying when the data
was fetched and what is estimated; each returns its matplotlib Axes.

Region names may be Chinese (NeoLink): the labels use a font with CJK glyphs when one is installed
(Noto Sans CJK, Source Han Sans, WenQuanYi, ... found through matplotlib or fontconfig); without one
the caption says so and how to get one."""

from __future__ import annotations

import logging
import shutil
import subprocess
import textwrap
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from gpu_tools.models import Listing, Offer, PriceHistory, PricePoint, SpendReport
from ipython_ext.frames import NOTEBOOK_EXTRA, MissingExtra

PROVIDER_COLOURS = {"netmind": "#1f77b4", "sesterce": "#ff7f0e", "nebius": "#2ca02c", "neolink": "#d62728"}
OTHER_COLOURS = ["#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
    "AR PL UMing CN",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
    "Hiragino Sans GB",
    "Arial Unicode MS",
)
MAX_BARS = 60


def need_pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingExtra(f"charts need matplotlib: {NOTEBOOK_EXTRA}") from None
    return plt


def colour(provider: str, seen: dict[str, str]) -> str:
    if provider not in seen:
        seen[provider] = PROVIDER_COLOURS.get(provider) or OTHER_COLOURS[len(seen) % len(OTHER_COLOURS)]
    return seen[provider]


_cjk_font: list[str | None] = []  # looked up once per process


class _QuietWeights(logging.Filter):
    """CJK fonts often come in one weight: matplotlib then logs a warning per label; the font is fine."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Failed to find font weight" not in record.getMessage()


def cjk_font() -> str | None:
    """The family name of an installed font with CJK glyphs, or None."""
    if _cjk_font:
        return _cjk_font[0]
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    found = next((n for n in CJK_FONTS if n in names), None)
    if found is None and shutil.which("fc-list"):  # installed after matplotlib built its font cache
        try:
            listed = subprocess.run(
                ["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=5
            ).stdout.splitlines()
        except (OSError, subprocess.SubprocessError):
            listed = []
        for line in listed:
            path = line.split(":")[0].strip()
            if not path:
                continue
            try:
                font_manager.fontManager.addfont(path)
                found = font_manager.FontProperties(fname=path).get_name()
                break
            except Exception:  # a font matplotlib cannot read: try the next
                continue
    if found:
        logging.getLogger("matplotlib.font_manager").addFilter(_QuietWeights())
    _cjk_font.append(found)
    return found


def has_cjk(text: str) -> bool:
    return any(ord(ch) >= 0x2E80 for ch in text)


def font_family(labels: Sequence[str]) -> tuple[list[str], str | None]:
    """Font families for these labels, and a caption note when CJK glyphs have no font here."""
    if not any(has_cjk(label) for label in labels):
        return ["DejaVu Sans"], None
    font = cjk_font()
    if font:
        return ["DejaVu Sans", font], None
    return ["DejaVu Sans"], (
        "Region names in Chinese need a CJK font, and none is installed here "
        "(e.g. apt install fonts-noto-cjk, or brew install --cask font-noto-sans-cjk)."
    )


def when(values: Sequence[str | None], ages: Sequence[int | None] = ()) -> str:
    """'2026-12-04 15:30 UTC' (or a range) from ISO times, or from ages in seconds before now."""
    now = datetime.now(UTC)
    moments = []
    for value in values:
        if value:
            try:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            moments.append(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    moments += [now.fromtimestamp(now.timestamp() - age, UTC) for age in ages if age is not None]
    if not moments:
        return now.strftime("%Y-%m-%d %H:%M UTC")
    first, last = min(moments).strftime("%Y-%m-%d %H:%M"), max(moments).strftime("%Y-%m-%d %H:%M")
    return f"{first} UTC" if first == last else f"{first} to {last} UTC"


def caption(ax: Any, lines: Sequence[str]) -> None:
    """Small text under the axes (wrapped to the figure's width), then a layout that fits it all."""
    text = "\n".join(textwrap.fill(line, 130) for line in lines if line)
    fig = ax.figure
    fig.text(0.01, 0.01, text, ha="left", va="bottom", fontsize=8, color="#444444")
    rows = text.count("\n") + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig.tight_layout(rect=(0, min(0.5, (0.12 + 0.15 * rows) / fig.get_figheight()), 1, 1))


def plot(result: Any, **kwargs: Any) -> Any:
    """The chart for a result: offers, spend (with --over) or price history."""
    if isinstance(result, PriceHistory):
        return plot_prices(result, **kwargs)
    if isinstance(result, Listing) and (not result.items or isinstance(result.items[0], Offer)):
        return plot_offers(result, **kwargs)
    if isinstance(result, SpendReport):
        return plot_spend(result, **kwargs)
    raise TypeError(f"no chart for a {type(result).__name__}: offers, spend and prices have .plot().")


# ---- offers -----------------------------------------------------------------------------------
def _label(o: Offer) -> str:
    count = f" ×{o.gpu_count}" if o.gpu_count else ""
    region = f"  {o.region}" if o.region else ""
    return f"{o.gpu_model or o.gpu_name}{count}{region}"


def plot_offers(listing: Listing[Offer], ax: Any = None, max_bars: int = MAX_BARS) -> Any:
    """$ per GPU-hour of each offer, grouped by GPU model (cheapest model first), one colour per
    provider; hatched bars are estimates, faded ones cannot be rented now."""
    plt = need_pyplot()
    from matplotlib.patches import Patch

    offers = list(listing.items)
    priced = [o for o in offers if o.usd_per_gpu_hour is not None]
    unpriced = sorted({o.provider for o in offers if o.usd_per_gpu_hour is None})
    cheapest: dict[str, float] = {}
    for o in priced:
        model = o.gpu_model or o.gpu_name
        cheapest[model] = min(cheapest.get(model, float("inf")), o.usd_per_gpu_hour or 0.0)
    priced.sort(
        key=lambda o: (cheapest[o.gpu_model or o.gpu_name], o.gpu_model or o.gpu_name, o.usd_per_gpu_hour)
    )
    dropped = max(0, len(priced) - max_bars)
    priced = priced[:max_bars]
    labels = [_label(o) for o in priced]
    families, font_note = font_family(labels)
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 1.9 + 0.27 * max(len(priced), 3)))
    seen: dict[str, str] = {}
    ys = list(range(len(priced)))[::-1]
    for y, o in zip(ys, priced, strict=True):
        ax.barh(
            y,
            o.usd_per_gpu_hour,
            color=colour(o.provider, seen),
            alpha=1.0 if o.available is not False else 0.3,
            hatch="///" if o.price_estimated else None,
            edgecolor="white" if o.price_estimated else None,
            linewidth=0,
        )
        text = f"${o.usd_per_gpu_hour:,.2f}" + (" ~" if o.price_estimated else "")
        ax.text(o.usd_per_gpu_hour, y, " " + text, va="center", fontsize=7.5, color="#333333")
    ax.set_yticks(ys, labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a missing glyph is said once, in the caption
        for tick in ax.get_yticklabels():
            tick.set_fontfamily(families)
            tick.set_fontsize(8)
    # a thin line between GPU models
    for i in range(1, len(priced)):
        if (priced[i].gpu_model or priced[i].gpu_name) != (priced[i - 1].gpu_model or priced[i - 1].gpu_name):
            ax.axhline(ys[i] + 0.5, color="#cccccc", linewidth=0.8)
    ax.set_xlabel("USD per GPU-hour ($/GPU-h)")
    ax.set_ylabel("GPU model × count, region")
    ax.set_title(("[SANDBOX] " if listing.sandbox else "") + "GPU offers: price per GPU-hour")
    ax.margins(x=0.15)
    handles = [Patch(color=c, label=p) for p, c in seen.items()]
    if any(o.price_estimated for o in priced):
        handles.append(Patch(facecolor="#999999", hatch="///", edgecolor="white", label="estimated (~)"))
    if any(o.available is False for o in priced):
        handles.append(Patch(color="#999999", alpha=0.3, label="not available now"))
    if handles:
        ax.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=8,
            title="provider",
            title_fontsize=8,
        )
    from ipython_ext.render import estimate_note, provider_notes

    lines = [
        f"Prices fetched {when([o.price_as_of for o in offers], [o.price_age_seconds for o in offers])}."
    ]
    if any(o.price_estimated for o in priced):
        lines.append(estimate_note(priced).replace("~ estimated: ", "Hatched (~) = estimated: "))
    if unpriced:
        lines.append(f"Not drawn, no price published: {', '.join(unpriced)}.")
    if dropped:
        lines.append(f"{dropped} more offers not drawn (max_bars={max_bars}).")
    lines += provider_notes(listing.providers) + ([font_note] if font_note else [])
    caption(ax, lines)
    return ax


# ---- spend over time --------------------------------------------------------------------------
def plot_spend(report: SpendReport, ax: Any = None) -> Any:
    """Cumulative spend per provider (and in all) over the report's period, each budget a line."""
    plt = need_pyplot()
    import matplotlib.dates as mdates
    from matplotlib.ticker import FuncFormatter

    history = list(getattr(report, "history", None) or [])
    if not history:
        raise ValueError("no spend over time in this report: ask for it with %gpu spend --over 7d.")
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4.8))
    seen: dict[str, str] = {}
    by_provider: dict[str, list[Any]] = {}
    for point in history:
        by_provider.setdefault(point.provider, []).append(point)
    for provider, points in by_provider.items():
        times = [_time(p.at) for p in points]
        style = (
            {"color": "black", "linewidth": 1.2, "linestyle": "--"}
            if provider == "total"
            else {"color": colour(provider, seen), "linewidth": 2.2}
        )
        ax.plot(times, [p.usd for p in points], label=provider, drawstyle="default", **style)
    for line, dash in zip(report.budgets, ("--", ":"), strict=False):
        window = "any 24 h" if line.name == "budget_usd_per_day" else f"since {line.since[:10]}"
        ax.axhline(line.limit_usd, color="#b22222", linestyle=dash, linewidth=1.2)
        ax.annotate(
            f"{line.name} ${line.limit_usd:,.2f} ({window})",
            (0.01, line.limit_usd),
            xycoords=("axes fraction", "data"),
            va="bottom",
            fontsize=8,
            color="#b22222",
        )
    # Start where billing started when that is late in the period: a day of zeros says nothing.
    start, end = _time(history[0].at), _time(history[-1].at)
    active = [_time(p.at) for p in history if p.provider != "total" and _time(p.at) > start]
    zoomed = bool(active) and (end - active[0]) < (end - start) / 4
    if zoomed:
        left = active[0]
        pad = max((end - left) * 0.05, timedelta(seconds=1))
        ax.set_xlim(left - pad, end + pad)
    top = max([p.usd for p in history] + [0.0])
    if top < 0.00005:  # nothing to see: say so rather than draw an empty box
        ax.text(
            0.5,
            0.5,
            "Nothing billed in this period (under $0.0001)",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="#666666",
        )
    decimals = 4 if 0 < top < 0.1 else 2
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"${v:,.{decimals}f}"))
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel("cumulative spend (USD)")
    period = getattr(report, "history_over", None) or ""
    ax.set_title(
        ("[SANDBOX] " if report.sandbox else "") + "Spend over time" + (f", last {period}" if period else "")
    )
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize=8, title="provider", title_fontsize=8)
    ax.grid(alpha=0.3)
    caption(
        ax,
        [
            f"From the journal, fetched {when([history[-1].at])}: each resource's hourly cost (the provider's, "
            "or the plan's when the provider states none) from create to delete, paused while stopped.",
            "Costs from plans are estimates; accrued figures are an upper bound."
            + (
                f" Nothing was billed in the period before {active[0]:%Y-%m-%d %H:%M:%S} UTC."
                if zoomed
                else ""
            ),
        ],
    )
    return ax


def _time(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# ---- price history ----------------------------------------------------------------------------
MAX_SERIES = 20


def plot_prices(history: PriceHistory, ax: Any = None, max_series: int = MAX_SERIES) -> Any:
    """Each offer's price (provider, GPU × count, region) as steps over time, $ per GPU-hour: a dot
    where a price was first seen, the line held until it changed or was last seen."""
    plt = need_pyplot()
    import matplotlib.dates as mdates
    from matplotlib.ticker import FuncFormatter

    from ipython_ext.render import estimate_note, provider_notes

    items = [p for p in history.items if p.usd_per_gpu_hour is not None]
    series: dict[str, list[PricePoint]] = {}
    for point in sorted(items, key=lambda p: p.at):
        series.setdefault(point.key, []).append(point)
    # Offers of one provider and GPU × count whose prices moved alike (the same steps at the same
    # times) are one line, its regions named together: lines drawn on top of each other say nothing.
    alike: dict[tuple[Any, ...], list[list[PricePoint]]] = {}
    for steps in series.values():
        first = steps[0]
        path = tuple((p.at, p.seen_at, p.usd_per_gpu_hour, p.price_estimated) for p in steps)
        alike.setdefault((first.provider, first.gpu, first.gpu_count, path), []).append(steps)
    # cheapest now first, so the legend reads like a price list
    ordered = sorted(alike.values(), key=lambda g: (g[0][-1].usd_per_gpu_hour or 0.0, g[0][-1].provider))
    dropped = max(0, len(ordered) - max_series)
    ordered = ordered[:max_series]
    labels = []
    for group in ordered:
        first = group[0][0]
        regions = ", ".join(dict.fromkeys(s[0].region for s in group if s[0].region))
        count = f" ×{first.gpu_count}" if first.gpu_count else ""
        labels.append(f"{first.provider} {first.gpu}{count}" + (f" {regions}" if regions else ""))
    families, font_note = font_family(labels)
    if ax is None:
        _, ax = plt.subplots(figsize=(9, max(4.8, 1.6 + 0.2 * len(ordered))))
    seen: dict[str, str] = {}
    styles = ["-", "--", ":", "-."]
    per_provider: dict[str, int] = {}
    # one provider: a colour per line; several: a colour per provider, a line style per offer
    single = len({g[0][0].provider for g in ordered}) == 1
    for i, (label, group) in enumerate(zip(labels, ordered, strict=True)):
        points = group[0]
        provider = points[0].provider
        style = styles[(i if single else per_provider.get(provider, 0)) % len(styles)]
        per_provider[provider] = per_provider.get(provider, 0) + 1
        tint = (PROVIDER_COLOURS.get(provider, OTHER_COLOURS[0]), *OTHER_COLOURS)[i % 7] if single else None
        times = [_time(p.at) for p in points] + [_time(points[-1].seen_at)]
        prices = [p.usd_per_gpu_hour for p in points] + [points[-1].usd_per_gpu_hour]
        estimated = any(p.price_estimated for p in points)
        line_colour = tint or colour(provider, seen)
        ax.step(
            times,
            prices,
            where="post",
            color=line_colour,
            linestyle=style,
            linewidth=1.6,
            label=label + (" ~" if estimated else ""),
        )
        ax.plot(times[:-1], prices[:-1], "o", color=line_colour, markersize=4)
    ax.margins(x=0.05, y=0.1)
    if not ordered:
        ax.text(
            0.5,
            0.5,
            f"No price of {history.gpu} recorded in the last {history.over}",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="#666666",
        )
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"${v:,.2f}"))
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel("USD per GPU-hour ($/GPU-h)")
    ax.set_title(
        ("[SANDBOX] " if history.sandbox else "") + f"Price history: {history.gpu}, last {history.over}"
    )
    if ordered:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            legend = ax.legend(
                loc="upper left",
                fontsize=7,
                bbox_to_anchor=(1.01, 1.0),
                title="provider, GPU × count, region",
                title_fontsize=7,
            )
            for text in legend.get_texts():
                text.set_fontfamily(families)
    ax.grid(alpha=0.3)
    fetched = when([history.fetched_at]) if history.fetched_at else "never"
    lines = [
        f"Prices recorded whenever offers are fetched (last fetched {fetched}); a dot is a price first seen, "
        "the line holds it until it changed or was last seen.",
        estimate_note(items).replace("~ estimated: ", "~ = estimated: ")
        if any(p.price_estimated for p in items)
        else "",
        f"{dropped} more offers not drawn (max_series={max_series}): filter with --provider or --region."
        if dropped
        else "",
        *provider_notes(history.providers),
        font_note or "",
    ]
    caption(ax, lines)
    return ax
