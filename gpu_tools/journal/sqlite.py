"""The embedded journal: one SQLite file."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from gpu_tools.journal import Db, Journal
from gpu_tools.journal.schema import SCHEMA_VERSION


class SqliteJournal(Journal):
    """The embedded journal: one SQLite file; `BEGIN IMMEDIATE` makes every write transaction
    exclusive among this process's threads and every other process on the file."""

    DIALECT = {"ID": "INTEGER PRIMARY KEY AUTOINCREMENT", "REAL": "REAL", "GREATEST": "MAX"}
    _integrity_errors = (sqlite3.IntegrityError,)

    def __init__(
        self,
        path: Path,
        *,
        schema_version: int = SCHEMA_VERSION,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        if now is not None:
            self.now = now  # type: ignore[method-assign]
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.location = str(path)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._migrate(schema_version)

    @contextmanager
    def _tx(self, serialize: bool = False) -> Iterator[Db]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[Db]:
        with self._lock:
            yield self._db

    def _version(self, db: Db) -> int:
        return int(db.execute("PRAGMA user_version").fetchone()[0])

    def _set_version(self, db: Db, version: int) -> None:
        db.execute(f"PRAGMA user_version = {int(version)}")

    def _columns(self, db: Db, table: str) -> set[str]:
        return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}

    def close(self) -> None:
        with self._lock:
            self._db.close()
