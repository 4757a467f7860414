"""list_resources, spend and find_orphans as the fleet grows: 10, 100 and 1000 resources (a third
each at Sesterce and NeoLink, the rest NetMind endpoints, which NetMind lists from the journal),
over a journal of 10k rows. No latency: what grows here is our own work (and the in-process
sandbox's). Then the fleet stays at 10 while the journal grows: the answer does not grow, so the
time should stay flat."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import (
    close,
    journal_noise,
    neolink_fleet,
    netmind_fleet,
    sesterce_fleet,
    start,
    timed,
    toolkit,
)

from gpu_tools.toolkit import Toolkit

SIZES = (10, 100, 1000)
JOURNAL_ROWS = 10_000
OPERATIONS = ("list_resources", "spend", "find_orphans")
RUNS = 5


def journal_rows(tk: Toolkit) -> int:
    with sqlite3.connect(str(tk.journal.path)) as db:
        return db.execute("SELECT COUNT(*) FROM journal").fetchone()[0]


async def grow(server, tk: Toolkit, have: int, want: int) -> None:
    add = want - have
    third = add // 3
    await sesterce_fleet(server, tk, third)
    await neolink_fleet(server, tk, third)
    await netmind_fleet(server, tk, add - 2 * third)


async def measure(tk: Toolkit) -> dict[str, float]:
    """The fastest of RUNS per operation: the least disturbed by the machine (and the sandbox, which
    shares this process)."""
    return {op: min([await timed(lambda o=op: tk.call(o, {})) for _ in range(RUNS)]) for op in OPERATIONS}


def table(title: str, label: str, rows: dict[int, dict[str, float]]) -> None:
    print(title)
    print(f"  {label:>14} " + "".join(f"{op:>26}" for op in OPERATIONS))
    previous = None
    for size, times in rows.items():
        cells = []
        for op in OPERATIONS:
            grew = f" (x{times[op] / previous[op]:.1f})" if previous else ""
            cells.append(f"{times[op] * 1000:>12.1f} ms{grew:>11}")
        print(f"  {size:>14} " + "".join(f"{c:>26}" for c in cells))
        previous = times


async def main() -> None:
    server = start(0)
    tk = toolkit(server)
    try:
        journal_noise(tk.journal, JOURNAL_ROWS - 30)
        by_fleet: dict[int, dict[str, float]] = {}
        have = 0
        for size in SIZES:
            await grow(server, tk, have, size)
            have = size
            listed = await tk.call("list_resources", {})
            assert listed.total == size, (listed.total, size)
            await tk.call("find_orphans", {})  # warm
            by_fleet[size] = await measure(tk)
        rows = journal_rows(tk)
    finally:
        await close(tk)
    table(f"fleet grows 10x per row, journal {rows} rows (ideal growth: x10)", "resources", by_fleet)

    for store in server.sandbox.stores.values():  # in place: the routes hold these dicts
        store.clear()
    tk = toolkit(server)
    try:
        await grow(server, tk, 0, 10)
        by_journal: dict[int, dict[str, float]] = {}
        for target in (1_000, 10_000):
            journal_noise(tk.journal, target - journal_rows(tk))
            await tk.call("find_orphans", {})
            by_journal[journal_rows(tk)] = await measure(tk)
    finally:
        await close(tk)
        server.stop()
    table("fleet of 10, journal grows 10x (ideal growth: x1.0, flat)", "journal rows", by_journal)


if __name__ == "__main__":
    asyncio.run(main())
