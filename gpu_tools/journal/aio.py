"""The journal off the event loop: `await journal.aio.x(...)` runs `journal.x(...)` on one of the
journal's worker threads (each keeps its own connection: SQLite's per thread, PostgreSQL's from the
pool), so a lock wait, a slow disk or a database that stopped answering delays that call alone,
never the loop and with it every other call of the server."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from gpu_tools.models import JournalEntry, LiveEntry, Plan

if TYPE_CHECKING:
    from gpu_tools.journal import Approval, Journal, Reservation

P = ParamSpec("P")
T = TypeVar("T")
WORKERS = 8


class AsyncJournal:
    """The journal's calls as coroutines, each run on a worker thread."""

    def __init__(self, journal: Journal, workers: int = WORKERS) -> None:
        self.journal = journal
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gpu-journal")

    async def run(self, fn: Callable[P, T], *args: P.args, **kw: P.kwargs) -> T:
        """Run `fn` (journal calls, or a check that reads the journal) on a worker thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kw))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ---- writing ----------------------------------------------------------------------------
    async def record(self, plan: Plan, effect: str, outcome: str, **kw: Any) -> int | None:
        return await self.run(self.journal.record, plan, effect, outcome, **kw)

    async def reserve(self, plan: Plan, effect: str, **kw: Any) -> Reservation:
        return await self.run(self.journal.reserve, plan, effect, **kw)

    async def finish(self, row_id: int, outcome: str, **kw: Any) -> None:
        await self.run(self.journal.finish, row_id, outcome, **kw)

    async def note(self, row_id: int, note: str) -> None:
        await self.run(self.journal.note, row_id, note)

    async def set_meta(self, key: str, value: str) -> None:
        await self.run(self.journal.set_meta, key, value)

    async def acquire_lease(self, name: str, holder: str, seconds: float) -> tuple[bool, str, str]:
        return await self.run(self.journal.acquire_lease, name, holder, seconds)

    async def release_lease(self, name: str, holder: str) -> None:
        await self.run(self.journal.release_lease, name, holder)

    async def new_approval(self, fingerprint: str, digest: str, message: Any, **kw: Any) -> Approval:
        return await self.run(self.journal.new_approval, fingerprint, digest, message, **kw)

    async def set_approval_result(self, approval_id: str, result: Any) -> None:
        await self.run(self.journal.set_approval_result, approval_id, result)

    async def settle_unanswered(self) -> int:
        return await self.run(self.journal.settle_unanswered)

    # ---- reading ----------------------------------------------------------------------------
    async def live(self) -> list[LiveEntry]:
        return await self.run(self.journal.live)

    async def spent(self, since: datetime, now: datetime | None = None) -> float:
        return await self.run(self.journal.spent, since, now)

    async def first_at(self) -> str | None:
        return await self.run(self.journal.first_at)

    async def meta(self, key: str) -> str | None:
        return await self.run(self.journal.meta, key)

    async def approval(self, approval_id: str) -> Approval | None:
        return await self.run(self.journal.approval, approval_id)

    async def latest_approval(self, fingerprint: str) -> Approval | None:
        return await self.run(self.journal.latest_approval, fingerprint)

    async def created_among(self, pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
        return await self.run(self.journal.created_among, pairs)

    async def created_row(self, provider: str, resource_id: str) -> dict[str, Any] | None:
        return await self.run(self.journal.created_row, provider, resource_id)

    async def find_key(self, *args: Any, **kw: Any) -> dict[str, Any] | None:
        return await self.run(self.journal.find_key, *args, **kw)

    async def unknown_rows(self) -> list[dict[str, Any]]:
        return await self.run(self.journal.unknown_rows)

    async def row(self, row_id: int) -> dict[str, Any] | None:
        return await self.run(self.journal.row, row_id)

    async def result_of(self, row_id: int) -> Any:
        return await self.run(self.journal.result_of, row_id)

    async def entries(self, **kw: Any) -> tuple[list[JournalEntry], int]:
        return await self.run(self.journal.entries, **kw)
