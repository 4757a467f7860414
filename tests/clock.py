"""A wall clock that tests move by hand, so no test sleeps to wait for time to pass."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FakeClock:
    """Call it for the time (an aware UTC datetime, as `gpu_tools.models.Clock`); `advance` moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self.at = start or datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> datetime:
        self.at += timedelta(seconds=seconds)
        return self.at
