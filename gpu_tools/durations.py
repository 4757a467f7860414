"""Durations as people write them (`90s`, `30m`, `2h`, `1.5d`, `1w`): a leaf, so settings, operations
and the fronts read them one way without importing each other."""

from __future__ import annotations

import re
from datetime import timedelta

DURATION = re.compile(r"(\d{1,9}(?:\.\d{1,6})?)\s*([smhdw])")
MAX_DURATION = timedelta(days=3650)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `2h`, `1.5d`, `1w` -> timedelta; ValueError (a sentence to follow a field's name)
    when it is not one or is longer than ten years."""
    match = DURATION.fullmatch(text.strip().lower())
    if not match:
        raise ValueError("must be a number and a unit: s, m, h, d or w (e.g. 2h)")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"is longer than {MAX_DURATION.days} days")
    return timedelta(seconds=seconds)
