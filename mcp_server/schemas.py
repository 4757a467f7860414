"""The tools' JSON schemas, built once per type and kept between starts.

Generating a JSON schema with pydantic costs milliseconds per type, and a server start needs a few
dozen (every input model and result type of the listed tools): most of what `build_server` would
spend. They only change when the code does, so they are kept in a file in the cache directory, keyed
by the source files of the core and this front (path, size, modification time) and the versions of
Python and pydantic. Any change to any of them makes a new key, and the schemas are built again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic

import gpu_tools
from gpu_tools.settings import cache_dir

VERSION = 1


def cache_file() -> Path:
    return cache_dir() / "mcp-schemas.json"


def code_key() -> str:
    """Changes whenever a source file of the core or of this front changes."""
    digest = hashlib.sha256(f"{VERSION} {sys.version} {pydantic.VERSION}".encode())
    for package in (Path(gpu_tools.__file__).parent, Path(__file__).parent):
        for path in sorted(package.rglob("*.py")):
            stat = path.stat()
            digest.update(f"{path} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


class SchemaCache:
    """Schemas by (kind, type) for one start: read from the file when its key matches, built and
    remembered otherwise; `save` writes the file when anything new was built."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_file()
        self.key = code_key()
        self.schemas: dict[str, Any] = {}
        self.dirty = False
        try:
            stored = json.loads(self.path.read_text())
            if stored.get("key") == self.key:
                self.schemas = stored["schemas"]
        except (OSError, ValueError, KeyError, AttributeError):
            pass  # no file yet, or an unreadable one: build everything

    def get(self, kind: str, model: type, build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        name = f"{kind} {model.__module__}.{model.__qualname__}"
        schema = self.schemas.get(name)
        if schema is None:
            schema = self.schemas[name] = build()
            self.dirty = True
        return schema

    def save(self) -> None:
        if not self.dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=self.path.parent, delete=False, suffix=".tmp") as tmp:
                json.dump({"key": self.key, "schemas": self.schemas}, tmp, separators=(",", ":"))
            os.replace(tmp.name, self.path)
            self.dirty = False
        except OSError:
            pass  # a read-only cache directory only costs the next start the time to build them again
