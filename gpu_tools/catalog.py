"""Cross-provider offers: GPU name normalization, USD figures, filtering and sorting."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from gpu_tools.models import Offer

if TYPE_CHECKING:
    from gpu_tools.operations import ListOffersInput

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
_MEMORY = re.compile(r"(\d{2,3})\s*G(?:I?B)?\b")


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
    if not name:
        return None
    match = _MEMORY.search(name.upper().replace("_", " "))
    return float(match.group(1)) if match else None


def with_usd(offer: Offer) -> Offer:
    """Fill canonical GPU model and per-GPU USD figures where they can be derived."""
    if offer.gpu_model is None:
        offer.gpu_model = canonical_gpu(offer.gpu_name)
    if offer.usd_per_hour is not None and offer.usd_per_gpu_hour is None and offer.gpu_count:
        offer.usd_per_gpu_hour = round(offer.usd_per_hour / offer.gpu_count, 6)
    return offer


def filter_offers(offers: list[Offer], q: ListOffersInput) -> list[Offer]:
    out = []
    gpu = q.gpu.lower() if q.gpu else None
    for o in map(with_usd, offers):
        if q.kind and o.kind != q.kind:
            continue
        if gpu and gpu not in o.gpu_name.lower() and gpu != (o.gpu_model or "").lower():
            canon = canonical_gpu(q.gpu)
            if canon is None or canon != o.gpu_model:
                continue
        if q.region and (o.region or "").lower() != q.region.lower():
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
    out.sort(key=lambda o: (o.usd_per_gpu_hour is None, o.usd_per_gpu_hour or 0.0, o.provider, o.gpu_name))
    return out
