"""Cross-provider offers: GPU name normalization, USD figures, filtering and sorting."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gpu_tools.journal import BILLABLE_KINDS
from gpu_tools.models import (
    LiveEntry,
    Offer,
    OrphanReport,
    ProviderSpend,
    Resource,
    SpendLine,
    SpendReport,
)

if TYPE_CHECKING:
    from gpu_tools.operations import ListOffersInput, ProviderFilter
    from gpu_tools.toolkit import Toolkit

BILLING_STATUSES = ("running", "pending")

# Canonical GPU models, most specific first; each pattern is matched against the upper-cased
# provider name with separators folded to spaces.
_GPU_PATTERNS: list[tuple[str, str]] = [
    (r"\bGB200\b", "GB200"),
    (r"\bB200\b", "B200"),
    (r"\bH200\b", "H200"),
    (r"\bH100\b", "H100"),
    (r"\bH800\b", "H800"),
    (r"\bH20\b", "H20"),
    (r"\bA100\b", "A100"),
    (r"\bA800\b", "A800"),
    (r"\bL40S\b", "L40S"),
    (r"\bL40\b", "L40"),
    (r"\bL4\b", "L4"),
    (r"\bA6000\b", "RTX A6000"),
    (r"\bA40\b", "A40"),
    (r"\bA10G?\b", "A10"),
    (r"\b(RTX )?5090\b", "RTX 5090"),
    (r"\b(RTX )?4090\b", "RTX 4090"),
    (r"\b(RTX )?3090\b", "RTX 3090"),
    (r"\bV100\b", "V100"),
    (r"\bT4\b", "T4"),
    (r"\bMI300X\b", "MI300X"),
]
# GPU memory written into a GPU name ("_80GB", "A100-40G"), not host RAM or disk ("232GiB RAM").
_MEMORY = re.compile(r"(\d{2,3})\s*G(?:I?B)?\b(?!\s*(?:RAM|MEM|MEMORY|DISK|SSD|NVME|STORAGE))")
# Memory of each canonical model's common variant, used when the name does not say.
GPU_MEMORY_GB: dict[str, float] = {
    "GB200": 192,
    "B200": 180,
    "H200": 141,
    "H100": 80,
    "H800": 80,
    "H20": 96,
    "A100": 80,
    "A800": 80,
    "L40S": 48,
    "L40": 48,
    "L4": 24,
    "RTX A6000": 48,
    "A40": 48,
    "A10": 24,
    "RTX 5090": 32,
    "RTX 4090": 24,
    "RTX 3090": 24,
    "V100": 32,
    "T4": 16,
    "MI300X": 192,
}


def canonical_gpu(name: str | None) -> str | None:
    """`NVIDIA_H100_SXM5_80GB`, `gpu-h100-sxm`, `1xH100 / 16 vCPU` -> `H100`; None if unknown."""
    if not name:
        return None
    folded = re.sub(r"[_\-/,()]+", " ", name.upper())
    folded = re.sub(r"(\d)X(?=[A-Z])", r"\1 ", folded)  # "1XL40S" -> "1 L40S"
    for pattern, model in _GPU_PATTERNS:
        if re.search(pattern, folded):
            return model
    return None


def gpu_memory_from_name(name: str | None) -> float | None:
    """GPU memory stated in the name itself, e.g. `NVIDIA_H100_SXM5_80GB` -> 80."""
    if not name:
        return None
    for part in re.split(r"\s*/\s*|,", name.upper()):
        if re.search(r"\b(RAM|VCPU|CPU|DISK|SSD)\b", part) and not canonical_gpu(part):
            continue  # "232GiB RAM" is host memory
        match = _MEMORY.search(part.replace("_", " ").replace("-", " "))
        if match:
            return float(match.group(1))
    return None


def gpu_memory_gb(name: str | None) -> float | None:
    """Memory of one GPU: from its name when stated, else the canonical model's usual size."""
    return gpu_memory_from_name(name) or GPU_MEMORY_GB.get(canonical_gpu(name) or "")


def with_usd(offer: Offer) -> Offer:
    """Fill canonical GPU model and per-GPU USD figures where they can be derived."""
    if offer.gpu_model is None:
        offer.gpu_model = canonical_gpu(offer.gpu_name)
    if offer.gpu_memory_gb is None:
        offer.gpu_memory_gb = gpu_memory_gb(offer.gpu_name)
    if offer.usd_per_hour is not None and offer.usd_per_gpu_hour is None and offer.gpu_count:
        offer.usd_per_gpu_hour = round(offer.usd_per_hour / offer.gpu_count, 6)
    return offer


def price_order(offer: Offer) -> tuple[bool, float, str, str]:
    """Sort key: cheapest USD per GPU-hour first, unpriced offers last."""
    return (offer.usd_per_gpu_hour is None, offer.usd_per_gpu_hour or 0.0, offer.provider, offer.gpu_name)


def filter_offers(offers: list[Offer], q: ListOffersInput) -> list[Offer]:
    out = []
    gpu = q.gpu.lower() if q.gpu else None
    canon = canonical_gpu(q.gpu)
    for o in map(with_usd, offers):
        if q.kind and o.kind != q.kind:
            continue
        if gpu and gpu not in o.gpu_name.lower() and gpu != (o.gpu_model or "").lower():
            if canon is None or canon != o.gpu_model:
                continue
        if q.region and q.region.lower() not in {
            str(o.region or "").lower(),
            str(o.details.get("region_id", "")).lower(),
        }:
            continue
        if q.min_gpu_count and (o.gpu_count or 0) < q.min_gpu_count:
            continue
        if q.min_gpu_memory_gb and (o.gpu_memory_gb or 0) < q.min_gpu_memory_gb:
            continue
        if q.max_usd_per_gpu_hour is not None and (
            o.usd_per_gpu_hour is None or o.usd_per_gpu_hour > q.max_usd_per_gpu_hour
        ):
            continue
        if q.available_only and o.available is False:
            continue
        out.append(o)
    out.sort(key=price_order)
    return out


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def _live_at_providers(tk: Toolkit, only: str | None) -> tuple[list[Resource], list[Any]]:
    resources, statuses = await tk.fan_out("resources", only, lambda p: p.list_resources())
    return [r for r in resources if r.kind in BILLABLE_KINDS and r.status != "deleting"], statuses


async def spend(tk: Toolkit, data: ProviderFilter, progress: Any = None) -> SpendReport:
    """Live resources across providers, their hourly cost now and what they have cost since creation."""
    resources, statuses = await _live_at_providers(tk, data.provider)
    journal = {(e.provider, e.resource_id): e for e in tk.journal.live()}
    created = tk.journal.created_ids()
    now = datetime.now(UTC)
    lines = []
    for r in resources:
        entry: LiveEntry | None = journal.get((r.provider, r.resource_id))
        rate, source = (r.usd_per_hour, "provider") if r.usd_per_hour is not None else (None, None)
        if rate is None and entry is not None and entry.usd_per_hour is not None:
            rate, source = entry.usd_per_hour, "journal"
        since = _parse_time(entry.created_at if entry else None) or _parse_time(r.created_at)
        hours = round((now - since).total_seconds() / 3600, 4) if since else None
        lines.append(
            SpendLine(
                provider=r.provider,
                resource_id=r.resource_id,
                name=r.name,
                kind=r.kind,
                status=r.status,
                usd_per_hour=(rate if r.status in BILLING_STATUSES else 0.0) if rate is not None else None,
                price_source=source,
                since=since.isoformat(timespec="seconds") if since else None,
                hours=hours,
                accrued_usd=round(rate * hours, 4) if rate is not None and hours is not None else None,
                expires_at=entry.expires_at if entry else None,
                tracked=(r.provider, r.resource_id) in created,
            )
        )
    by_provider = []
    for name in dict.fromkeys(line.provider for line in lines):
        mine = [line for line in lines if line.provider == name]
        by_provider.append(
            ProviderSpend(
                provider=name,
                resources=len(mine),
                usd_per_hour=round(sum(line.usd_per_hour or 0.0 for line in mine), 4),
                accrued_usd=round(sum(line.accrued_usd or 0.0 for line in mine), 4),
            )
        )
    notes = ["accrued_usd assumes each resource ran at today's rate since creation: an upper bound."]
    unknown = [line.resource_id for line in lines if line.usd_per_hour is None]
    if unknown:
        notes.append(f"no price known for: {', '.join(unknown)} (left out of the totals)")
    return SpendReport(
        items=lines,
        by_provider=by_provider,
        total_usd_per_hour=round(sum(p.usd_per_hour for p in by_provider), 4),
        total_accrued_usd=round(sum(p.accrued_usd for p in by_provider), 4),
        providers=statuses,
        notes=notes,
    )


async def find_orphans(tk: Toolkit, data: ProviderFilter, progress: Any = None) -> OrphanReport:
    """Live at a provider but never created by this tool; created by it but gone from the provider."""
    resources, statuses = await _live_at_providers(tk, data.provider)
    answered = {s.provider for s in statuses if s.status == "ok"}
    created = tk.journal.created_ids()
    listed = {(r.provider, r.resource_id) for r in resources}
    untracked = [r for r in resources if (r.provider, r.resource_id) not in created]
    gone = [
        e
        for e in tk.journal.live()
        if e.provider in answered
        and (data.provider is None or e.provider == data.provider)
        and (e.provider, e.resource_id) not in listed
    ]
    return OrphanReport(
        untracked=untracked,
        gone=gone,
        untracked_usd_per_hour=round(sum(r.usd_per_hour or 0.0 for r in untracked), 4),
        providers=statuses,
    )
