"""The embedded journal: one SQLite file in WAL mode, one connection per thread, so readers run
beside the writer."""

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
    exclusive among this process's threads and every other process on the file. Each thread (the
    journal's workers, a caller's own) reads through a connection of its own: in WAL mode readers
    never wait for the writer, nor it for them."""

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
        self._lock = threading.RLock()  # one writer at a time in this process
        self._guard = threading.Lock()  # the list of connections
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._wal = False
        self._migrate(schema_version)

    @property
    def _db(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
            conn.row_factory = sqlite3.Row
            if not self._wal:  # the file keeps WAL mode once it is set
                conn.execute("PRAGMA journal_mode=WAL")
                self._wal = True
            with self._guard:  # not the writers' lock: a reader never waits for a writer
                self._connections.append(conn)
            self._local.conn = conn
        return conn

    @contextmanager
    def _tx(self, serialize: bool = False) -> Iterator[Db]:
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[Db]:
        yield self._db

    def _version(self, db: Db) -> int:
        return int(db.execute("PRAGMA user_version").fetchone()[0])

    def _set_version(self, db: Db, version: int) -> None:
        db.execute(f"PRAGMA user_version = {int(version)}")

    def _columns(self, db: Db, table: str) -> set[str]:
        return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}

    def close(self) -> None:
        self._close_workers()
        with self._guard:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
            self._local = threading.local()
