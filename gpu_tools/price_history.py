"""Price history: each offer's price, observed whenever offers are fetched from a provider.

The toolkit hands every fresh fetch to `observe`, which keeps a price in the journal only when it
differs from the last one kept for that offer (provider, kind, offer id, region, GPU count), and
otherwise notes that it was seen again. `price_history` reads the steps back for one GPU model over a
past period: the same figures `list_offers` shows (USD, per GPU-hour, estimates marked)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from gpu_tools.catalog import named_region
from gpu_tools.durations import parse_duration
from gpu_tools.gpus import canonical_gpu, with_usd
from gpu_tools.models import Offer, PriceHistory, PricePoint, parse_time

if TYPE_CHECKING:
    from gpu_tools.context import Context, Progress
    from gpu_tools.operations import PriceHistoryInput

log = logging.getLogger("gpu_tools.prices")
# How long recording a fetch's prices may take before the listing goes on without it.
RECORD_SECONDS = 5.0


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def observations(offers: Sequence[Offer], fetched_at: datetime) -> list[PricePoint]:
    """The priced offers of one fetch as price points: first seen when the provider says it stated the
    price (`price_as_of`), else at the fetch; seen at the fetch."""
    seen = _stamp(fetched_at)
    # One price per offer and fetch (the first listed), so a listing that names an offer twice never
    # flips its series back and forth.
    points: dict[str, PricePoint] = {}
    for offer in offers:
        o = named_region(with_usd(offer.model_copy()))
        if o.usd_per_hour is None and o.price is None:
            continue
        stated = parse_time(o.price_as_of)
        converted = o.currency not in (None, "USD")
        point = PricePoint(
            at=_stamp(min(stated, fetched_at)) if stated else seen,
            seen_at=seen,
            provider=o.provider,
            gpu=o.gpu_model or o.gpu_name,
            gpu_count=o.gpu_count,
            region=o.region,
            region_id=o.region_id,
            offer_id=o.offer_id,
            kind=o.kind,
            usd_per_hour=o.usd_per_hour,
            usd_per_gpu_hour=o.usd_per_gpu_hour,
            price=o.price if converted else None,
            currency=o.currency if converted else None,
            price_estimated=o.price_estimated,
        )
        points.setdefault(point.key, point)
    return list(points.values())


async def observe(tk: Context, offers: Sequence[Offer], fetched_at: datetime) -> None:
    """Record one fetch's prices. Best effort: a journal that cannot take them (busy, unreachable)
    costs the history this fetch, never the listing; the log says so."""
    points = observations(offers, fetched_at)
    if not points:
        return
    try:
        await asyncio.wait_for(tk.journal.aio.run(tk.journal.record_prices, points), RECORD_SECONDS)
    except Exception as exc:  # the listing goes on; the next fetch records again
        log.warning("price history: %d prices not recorded (%s: %s)", len(points), type(exc).__name__, exc)


async def price_history(tk: Context, data: PriceHistoryInput, progress: Progress | None) -> PriceHistory:
    """The steps of `data.gpu`'s prices over `data.over`, per offer. Offers are fetched first (from the
    cache while it is fresh), so the history runs up to now; a provider that fails is named."""
    _, statuses = await tk.fan_out("offers", data.provider, lambda p: tk.offers(p), progress)
    now = tk.now()
    since = _stamp(now - parse_duration(data.over))
    canon = canonical_gpu(data.gpu)
    allowed = tk.settings.allowed_providers  # what the policy hides from the offers, it hides here too
    providers = [p for p in data.provider or allowed or [] if allowed is None or p in allowed] or None
    points, total = (
        ([], 0)
        if allowed is not None and providers is None
        else await tk.journal.aio.run(
            lambda: tk.journal.price_points(
                since, gpu=canon or data.gpu, exact=canon is not None, providers=providers, region=data.region
            )
        )
    )
    fetched = await tk.journal.aio.run(tk.journal.last_price_fetch)
    notes = []
    if total > len(points):
        notes.append(f"{total - len(points)} older price changes are left out; ask for a shorter period.")
    if not points:
        notes.append(
            f"No price of {data.gpu} was seen in the last {data.over}. Prices are recorded whenever offers "
            "are fetched: call list_offers (with refresh) to record today's."
        )
    return PriceHistory(
        items=points,
        total=total,
        providers=statuses,
        gpu=canon or data.gpu,
        over=data.over,
        fetched_at=fetched,
        notes=notes,
    )
