"""GPU names and prices, normalized: canonical models, memory per GPU, USD per GPU-hour, price order.

A leaf module (models only): provider adapters use it to describe their offers, and the catalog
uses it to filter and sort them.
"""

from __future__ import annotations

import re

from gpu_tools.models import Offer

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
