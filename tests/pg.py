"""A PostgreSQL server of our own in a temporary directory (tests and bench/ use it).

initdb refuses to run as root, so as root the server runs as the `postgres` user (or `nobody`)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class NoPostgres(Exception):
    """No PostgreSQL server binaries (or no psycopg) here."""


def bindir() -> Path | None:
    """The server binaries: initdb on PATH, else the newest Debian postgresql package."""
    found = shutil.which("initdb")
    candidates = [found] if found else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    for candidate in candidates:
        path = Path(candidate).resolve().parent
        if (path / "pg_ctl").exists():
            return path
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Postgres:
    """A server of our own: its admin URL, and stop/start for tests of an outage."""

    def __init__(self, bin_: Path, root: Path, user: str | None, port: int, max_connections: int) -> None:
        self.bin, self.root, self.user, self.port = bin_, root, user, port
        self.data = root / "data"
        self.url = f"postgresql://gpu@127.0.0.1:{port}/postgres"
        self.options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.options += f" -c max_connections={max_connections}"

    def run(self, *args: str) -> None:
        done = subprocess.run(
            args, user=self.user, capture_output=True, text=True, timeout=120, cwd=self.root
        )
        if done.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed: {done.stderr or done.stdout}")

    def start(self) -> None:
        ctl = str(self.bin / "pg_ctl")
        self.run(
            ctl, "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-o", self.options, "start"
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (fast: every connection is ended, as a restart or an outage does)."""
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"],
                user=self.user,
                capture_output=True,
                timeout=60,
            )


@contextmanager
def postgres_server(max_connections: int = 300) -> Iterator[Postgres]:
    """Start a server on a free loopback port, yield it, stop it and delete its files."""
    try:
        import psycopg
    except ImportError:
        raise NoPostgres("psycopg is not installed (pip install -e '.[test]')") from None
    bin_ = bindir()
    if bin_ is None:
        raise NoPostgres(
            "no PostgreSQL server binaries (initdb, pg_ctl): install the postgresql package (.ci/run does)"
        )
    user = None
    if os.geteuid() == 0:
        names = {p.pw_name for p in pwd.getpwall()}
        user = "postgres" if "postgres" in names else "nobody"
    root = Path(tempfile.mkdtemp(prefix="gpu-tools-pg-"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    server = Postgres(bin_, root, user, free_port(), max_connections)
    try:
        server.run(
            str(bin_ / "initdb"),
            "-D",
            str(server.data),
            "-U",
            "gpu",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        server.start()
        with psycopg.connect(server.url) as conn:
            conn.execute("SELECT 1")
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def temporary_postgres(max_connections: int = 300) -> Iterator[str]:
    """Start a server on a free loopback port, yield its admin URL, stop it and delete its files."""
    with postgres_server(max_connections) as server:
        yield server.url


def new_database(admin_url: str, name: str) -> str:
    """Create an empty database on the server and return its URL."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def drop_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
