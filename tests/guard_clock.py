"""gpu-guard (`gpu_tools.guard.main`, the real process and loop) with a wall clock a test moves by hand.

Run as `python tests/guard_clock.py [gpu-guard arguments]` with GUARD_CLOCK_FILE naming a file that
holds a number of seconds: the guard's clock (its toolkit's, so its journal's, the lease's and its
expiries') is the real time plus those seconds, read afresh on every call. A test writes a larger number
to make time pass for the guard at once, instead of sleeping until an expiry falls due.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from gpu_tools import guard
from gpu_tools.models import utc_now

OFFSET = Path(os.environ["GUARD_CLOCK_FILE"])


def now() -> datetime:
    return utc_now() + timedelta(seconds=float(OFFSET.read_text().strip() or 0))


class MovedToolkit(guard.Toolkit):
    """The guard's toolkit, on the moved clock."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("now", now)
        super().__init__(*args, **kwargs)


if __name__ == "__main__":
    guard.Toolkit = MovedToolkit  # type: ignore[misc]
    guard.main(sys.argv[1:])
