"""Slowly changing provider data kept between processes, so a new process's first call does not
pay the round trips a previous one already paid.

A `Shelf` is one JSON file in the cache directory per provider account (the file name carries a
digest of the base URL and the credentials, never the credentials themselves; the sandbox has its
own). It holds sections of values, each with the wall-clock time it was fetched: whoever reads a
value back decides from that time whether it is still fresh, and shows it as the value's age.

It is only a cache: a missing, unreadable or foreign file reads as empty, a failed write is
ignored, and two processes writing at once can only lose each other's newest entries (each write
merges with the file as it is on disk, newest entry first). Writes go to a temporary file that
replaces the old one, so a reader never sees half a file; they happen at most once per turn of the
event loop, however many values were fetched in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

VERSION = 1
REWRITE_UNCHANGED = timedelta(minutes=1)  # an unchanged value's time is written again at most this often


def account_file(directory: Path, provider: str, *parts: str) -> Path:
    """The file of one provider account: `parts` (base URL, credentials) only enter a digest."""
    digest = hashlib.sha256("\0".join((provider, *parts)).encode()).hexdigest()[:16]
    return directory / f"{provider}-{digest}.json"


class Shelf:
    """Sections of stamped JSON values in one file (see the module's docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[str, dict[str, list[Any]]] | None = None
        self._dirty: dict[str, set[str]] = {}
        self._flush_on: asyncio.AbstractEventLoop | None = None  # the loop a flush is scheduled on

    def _read(self) -> dict[str, dict[str, list[Any]]]:
        try:
            stored = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(stored, dict) or stored.get("version") != VERSION:
            return {}
        sections = stored.get("sections")
        if not isinstance(sections, dict):
            return {}
        return {name: s for name, s in sections.items() if isinstance(s, dict)}

    def _loaded(self) -> dict[str, dict[str, list[Any]]]:
        if self._data is None:
            self._data = self._read()
        return self._data

    def get(self, section: str, key: str) -> tuple[datetime, Any] | None:
        """The value kept under `key` and when it was fetched, or None."""
        entry = self._loaded().get(section, {}).get(key)
        if not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[0], str):
            return None
        try:
            at = datetime.fromisoformat(entry[0])
        except ValueError:
            return None
        if at.tzinfo is None:
            return None
        return at, entry[1]

    def put(self, section: str, key: str, at: datetime, value: Any, *, force: bool = False) -> None:
        """Keep `value` fetched `at`; written to the file on the event loop's next turn (at once
        when no loop runs). An unchanged value is written again only now and then, unless `force`
        (a refresh: the next process must see the time this one showed)."""
        kept = self.get(section, key)
        if not force and kept is not None and kept[1] == value and at - kept[0] < REWRITE_UNCHANGED:
            return
        self._loaded().setdefault(section, {})[key] = [at.isoformat(), value]
        self._dirty.setdefault(section, set()).add(key)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if self._flush_on is not loop:  # none scheduled, or on a loop that may never run it again
            self._flush_on = loop
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write what changed, merged with the file as it is now (the newer entry wins a key)."""
        self._flush_on = None
        if not self._dirty or self._data is None:
            return
        merged = self._read()
        for section, keys in self._dirty.items():
            ours = self._data.get(section, {})
            theirs = merged.setdefault(section, {})
            for key in keys:
                if key in ours and (key not in theirs or _newer(ours[key], theirs[key])):
                    theirs[key] = ours[key]
        self._dirty = {}
        written: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=self.path.parent, delete=False, suffix=".tmp") as tmp:
                written = tmp.name
                json.dump({"version": VERSION, "sections": merged}, tmp, separators=(",", ":"))
            os.replace(written, self.path)
        except OSError:
            # A read-only or full cache directory only costs the next process its round trips.
            if written is not None:
                with contextlib.suppress(OSError):
                    os.unlink(written)
            return
        self._data = merged


def _newer(ours: list[Any], theirs: Any) -> bool:
    try:
        return datetime.fromisoformat(ours[0]) >= datetime.fromisoformat(theirs[0])
    except (TypeError, ValueError, IndexError, KeyError):
        return True


def age(at: datetime, now: datetime) -> float:
    """Seconds from `at` to `now` (negative when `at` is in the future: a clock that went back)."""
    return (now - at).total_seconds()
