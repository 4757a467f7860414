"""Version 7 of the journal: the prices seen whenever offers are fetched (price history).

One row per offer and price: a fetch that finds an offer at the price last kept for it only moves
that row's `seen_at`; a different price (or currency, or estimate) is a new row. So the table grows
with price changes, not with fetches, and each row is a step of the offer's series, from `at` (first
seen) to `seen_at` (last seen unchanged)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from gpu_tools.models import PricePoint

_COLUMNS = (
    "at, seen_at, provider, gpu, gpu_count, region, region_id, offer_id, kind, usd_per_hour, usd_per_gpu_hour, price,"
    " currency, estimated"
)
MAX_POINTS = 5000  # rows one read returns at most (the newest changes are kept)


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return round(float(a), 6) == round(float(b), 6)


class Prices:
    """Price observations; mixed into `Journal`, whose transactions it writes in."""

    if TYPE_CHECKING:

        def _tx(self, serialize: bool = False) -> AbstractContextManager[Any]: ...

        def _read(self) -> AbstractContextManager[Any]: ...

    def record_prices(self, points: Sequence[PricePoint]) -> int:
        """Keep each point whose price differs from the last one kept for its offer; for the others,
        move that row's `seen_at` forward. One transaction, serialized with every other writer, so two
        servers fetching at once never store the same change twice. Returns how many rows were added."""
        added = 0
        with self._tx(serialize=True) as db:
            for p in points:
                last = db.execute(
                    "SELECT id, usd_per_hour, price, currency, estimated, seen_at FROM price_observations"
                    " WHERE key=? ORDER BY id DESC LIMIT 1",
                    (p.key,),
                ).fetchone()
                if (
                    last is not None
                    and _same(last[1], p.usd_per_hour)
                    and _same(last[2], p.price)
                    and last[3] == p.currency
                    and bool(last[4]) == p.price_estimated
                ):
                    if p.seen_at > last[5]:
                        db.execute("UPDATE price_observations SET seen_at=? WHERE id=?", (p.seen_at, last[0]))
                    continue
                db.execute(
                    "INSERT INTO price_observations (key, at, seen_at, provider, kind, offer_id, gpu, gpu_count,"
                    " region, region_id, usd_per_hour, usd_per_gpu_hour, price, currency, estimated)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        p.key,
                        p.at,
                        p.seen_at,
                        p.provider,
                        p.kind,
                        p.offer_id,
                        p.gpu,
                        p.gpu_count,
                        p.region,
                        p.region_id,
                        p.usd_per_hour,
                        p.usd_per_gpu_hour,
                        p.price,
                        p.currency,
                        int(p.price_estimated),
                    ),
                )
                added += 1
        return added

    def price_points(
        self,
        since: str,
        *,
        gpu: str,
        exact: bool = True,
        providers: Sequence[str] | None = None,
        region: str | None = None,
        limit: int = MAX_POINTS,
    ) -> tuple[list[PricePoint], int]:
        """The steps of `gpu` (a canonical model; with exact=False, any GPU whose name contains it) still
        seen at or after `since`, oldest first, and how many there are in all (the newest `limit`)."""
        where = ["seen_at >= ?", "LOWER(gpu) = ?" if exact else "LOWER(gpu) LIKE ?"]
        args: list[Any] = [since, gpu.lower() if exact else f"%{gpu.lower()}%"]
        if providers:
            where.append(f"provider IN ({','.join('?' * len(providers))})")
            args += list(providers)
        if region:
            where.append("(LOWER(region) = ? OR LOWER(region_id) = ?)")
            args += [region.lower(), region.lower()]
        clause = " AND ".join(where)
        with self._read() as db:
            total = int(
                db.execute(f"SELECT COUNT(*) FROM price_observations WHERE {clause}", args).fetchone()[0]
            )
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM price_observations WHERE {clause} ORDER BY id DESC LIMIT ?",
                [*args, limit],
            ).fetchall()
        points = [
            PricePoint(
                at=r[0],
                seen_at=r[1],
                provider=r[2],
                gpu=r[3],
                gpu_count=r[4],
                region=r[5],
                region_id=r[6],
                offer_id=r[7],
                kind=r[8],
                usd_per_hour=r[9],
                usd_per_gpu_hour=r[10],
                price=r[11],
                currency=r[12],
                price_estimated=bool(r[13]),
            )
            for r in reversed(rows)  # oldest first; rows first seen in one second stay in order
        ]
        points.sort(key=lambda p: (p.at, p.provider, p.key))
        return points, total

    def last_price_fetch(self) -> str | None:
        """When offers were last fetched (the latest `seen_at`)."""
        with self._read() as db:
            row = db.execute("SELECT MAX(seen_at) FROM price_observations").fetchone()
        return row[0] if row else None
