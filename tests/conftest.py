"""Shared fixtures: an isolated GPU_TOOLS_HOME, a live sandbox on loopback, a toolkit pointed at it."""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from gpu_tools.sandbox import SandboxServer
from gpu_tools.settings import Settings
from gpu_tools.toolkit import Toolkit

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def gpu_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own config and journal directory, and no real credentials."""
    home = tmp_path / "gpu-home"
    monkeypatch.setenv("GPU_TOOLS_HOME", str(home))
    for key in list(os.environ):
        if key.endswith(("_API_KEY", "_API_TOKEN", "_BASE_URL", "_NAMESPACE")) or key.startswith(
            "GPU_TOOLS_"
        ):
            if key != "GPU_TOOLS_HOME":
                monkeypatch.delenv(key, raising=False)
    return home


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    with SandboxServer(ready_after=0.3) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> Iterator[SandboxServer]:
    """The session's sandbox, with its state, request log and faults cleared for this test."""
    sb = sandbox_server.sandbox
    sb.requests.clear()
    sb.faults.clear()
    for store in sb.stores.values():  # in place: routes hold references to these dicts
        store.clear()
    sb.ready_after = 0.3
    yield sandbox_server
    sb.faults.clear()


# ---- PostgreSQL: a real server in a temporary directory, one fresh database per test --------------------
def _pg_bindir() -> Path | None:
    """The PostgreSQL server binaries: initdb on PATH, else the newest Debian postgresql package."""
    found = shutil.which("initdb")
    candidates = [found] if found else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    for candidate in candidates:
        bindir = Path(candidate).resolve().parent
        if (bindir / "pg_ctl").exists():
            return bindir
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """A PostgreSQL server of our own on a loopback port; yields its admin URL. initdb refuses to
    run as root, so as root the server runs as the `postgres` user (or `nobody`)."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - the test extra installs it
        pytest.skip("psycopg is not installed (pip install -e '.[test]')")
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip(
            "no PostgreSQL server binaries (initdb, pg_ctl): install the postgresql package (.ci/run does)"
        )
    user = None
    if os.geteuid() == 0:
        names = {p.pw_name for p in pwd.getpwall()}
        user = "postgres" if "postgres" in names else "nobody"
    root = Path(tempfile.mkdtemp(prefix="gpu-tools-pg-"))
    data = root / "data"
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    port = _free_port()

    def run(*args: str) -> None:
        done = subprocess.run(args, user=user, capture_output=True, text=True, timeout=120, cwd=root)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stderr or done.stdout}")

    run(str(bindir / "initdb"), "-D", str(data), "-U", "gpu", "-A", "trust", "-E", "UTF8", "--no-sync")
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(root / "server.log"),
        "-w",
        "-o",
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300",
        "start",
    )
    url = f"postgresql://gpu@127.0.0.1:{port}/postgres"
    try:
        with psycopg.connect(url) as conn:
            conn.execute("SELECT 1")
        yield url
    finally:
        subprocess.run(
            [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            user=user,
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(postgres: str) -> Iterator[str]:
    """A fresh, empty database on the session's server."""
    import psycopg

    name = f"journal_{secrets.token_hex(6)}"
    with psycopg.connect(postgres, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield postgres.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(postgres, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_backend(request: pytest.FixtureRequest, gpu_home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test once on the SQLite journal and once on a PostgreSQL one (GPU_TOOLS_JOURNAL_URL, so
    every Settings() the test makes, and every process it starts with os.environ, uses it)."""
    if request.param == "postgresql":
        monkeypatch.setenv("GPU_TOOLS_JOURNAL_URL", request.getfixturevalue("pg_url"))
    return str(request.param)


def sandbox_settings(sandbox: SandboxServer, **overrides: object) -> Settings:
    return Settings(**overrides).for_sandbox(sandbox.url)  # type: ignore[arg-type]


@pytest.fixture
def tk(sandbox: SandboxServer) -> Iterator[Toolkit]:
    toolkit = Toolkit(sandbox_settings(sandbox))
    yield toolkit
    toolkit.close()


def new_shell() -> InteractiveShell:
    config = Config()
    config.HistoryAccessor.enabled = False
    shell = InteractiveShell(config=config)
    shell.extension_manager.load_extension("ipython_ext")
    return shell


@pytest.fixture
def shell(sandbox: SandboxServer) -> Iterator[InteractiveShell]:
    """An IPython shell with %gpu loaded and pointed at the test's sandbox."""
    shell = new_shell()
    shell._gpu_magics._replace_toolkit(Toolkit(sandbox_settings(sandbox)))
    yield shell
    shell.extension_manager.unload_extension("ipython_ext")


def mutating_requests(sandbox: SandboxServer) -> list[dict]:
    """Requests in the sandbox log that change something (reads such as pricing previews excluded)."""
    return [
        r
        for r in sandbox.sandbox.requests
        if r["method"] in ("POST", "PUT", "PATCH", "DELETE")
        and not r["path"].endswith(("/pricing", "/chat/completions"))
    ]


def fetch_log(sandbox: SandboxServer) -> list[dict]:
    return httpx.get(f"{sandbox.url}/_sandbox/requests").json()
