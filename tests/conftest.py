"""Shared fixtures: an isolated GPU_TOOLS_HOME, a live sandbox on loopback, a toolkit pointed at it."""

from __future__ import annotations

import asyncio
import os
import secrets
import selectors
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from IPython.core.interactiveshell import InteractiveShell
from pydantic import SecretStr
from traitlets.config import Config

from gpu_tools.journal import Journal, SqliteJournal
from gpu_tools.sandbox import SandboxServer
from gpu_tools.settings import Settings
from gpu_tools.toolkit import Toolkit
from tests.pg import NoPostgres, drop_database, new_database, temporary_postgres

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
@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """The session's own PostgreSQL server (tests/pg.py); yields its admin URL."""
    try:
        with temporary_postgres() as url:
            yield url
    except NoPostgres as exc:
        pytest.skip(str(exc))


@pytest.fixture
def pg_url(postgres: str) -> Iterator[str]:
    """A fresh, empty database on the session's server."""
    name = f"journal_{secrets.token_hex(6)}"
    url = new_database(postgres, name)
    yield url
    drop_database(postgres, name)


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_backend(request: pytest.FixtureRequest, gpu_home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test once on the SQLite journal and once on a PostgreSQL one (GPU_TOOLS_JOURNAL_URL, so
    every Settings() the test makes, and every process it starts with os.environ, uses it)."""
    if request.param == "postgresql":
        monkeypatch.setenv("GPU_TOOLS_JOURNAL_URL", request.getfixturevalue("pg_url"))
    return str(request.param)


def sandbox_settings(sandbox: SandboxServer, **overrides: object) -> Settings:
    settings = Settings(**overrides).for_sandbox(sandbox.url)  # type: ignore[arg-type]
    # A sandbox keeps a journal of its own, never a team's; the PostgreSQL runs of the journal tests
    # (journal_backend) put it on the test's database on purpose.
    url = os.environ.get("GPU_TOOLS_JOURNAL_URL")
    return settings.model_copy(update={"journal_url": SecretStr(url)}) if url else settings


@pytest.fixture
def tk(sandbox: SandboxServer) -> Iterator[Toolkit]:
    toolkit = Toolkit(sandbox_settings(sandbox))
    yield toolkit
    toolkit.close()


def ready_line(proc: subprocess.Popen[str], seconds: float = 30) -> str:
    """The first line a child writes on stdout (its "ready ..."), or a failure naming the program once
    `seconds` pass without one: a child that hangs at start fails its test, never the whole run."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as waiting:
        waiting.register(proc.stdout, selectors.EVENT_READ)
        if not waiting.select(timeout=seconds):
            proc.kill()
            pytest.fail(
                f"{' '.join(map(str, proc.args[:2]))} wrote nothing in {seconds:g} s (it did not start)"
            )  # type: ignore[index]
    return proc.stdout.readline()


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


def journal_text(journal: Journal) -> str:
    """Everything the journal stores, as text (the file's bytes, or every row of the database)."""
    if isinstance(journal, SqliteJournal):
        return journal.path.read_bytes().decode(errors="replace")
    with journal._read() as db:
        return " ".join(
            repr(tuple(row))
            for table in ("journal", "approvals", "meta")
            for row in db.execute(f"SELECT * FROM {table}")
        )


def mutating_requests(sandbox: SandboxServer) -> list[dict]:
    """Requests in the sandbox log that change something (reads such as pricing previews excluded)."""
    return [
        r
        for r in sandbox.sandbox.requests
        if r["method"] in ("POST", "PUT", "PATCH", "DELETE")
        and not r["path"].endswith(("/pricing", "/chat/completions"))
    ]


def stdio_env(gpu_home: Path, **extra: str) -> dict[str, str]:
    """The environment of a `python -m mcp_server` child: a home of its own, the test's journal (the
    PostgreSQL runs of journal_backend), and `extra` (a provider's sandbox credentials and URL)."""
    env = {"PATH": os.environ.get("PATH", ""), "GPU_TOOLS_HOME": str(gpu_home), "HOME": str(gpu_home)}
    if os.environ.get("GPU_TOOLS_JOURNAL_URL"):
        env["GPU_TOOLS_JOURNAL_URL"] = os.environ["GPU_TOOLS_JOURNAL_URL"]
    return env | extra


def nebius_endpoint_made_elsewhere(sandbox: SandboxServer, name: str) -> str:
    """An endpoint created straight at the sandbox, as the provider's console would: this tool's
    journal knows nothing of it. Returns its id."""
    body = {
        "name": name,
        "model_name": "openai/gpt-oss-20b",
        "flavor_name": "base",
        "gpu_type": "gpu-h100-sxm",
        "gpu_count": 1,
        "region": "eu-north1",
        "scaling": {"min_replicas": 1, "max_replicas": 1},
    }
    made = httpx.post(
        f"{sandbox.url}/nebius/v0/dedicated_endpoints",
        json=body,
        headers={"Authorization": "Bearer sandbox-key"},
    )
    made.raise_for_status()
    return made.json()["id"]


def fetch_log(sandbox: SandboxServer) -> list[dict]:
    return httpx.get(f"{sandbox.url}/_sandbox/requests").json()


class LosesAnswers(httpx.AsyncBaseTransport):
    """A toolkit's transport that loses answers on demand, with no clock: a request chosen with
    `lose_next` goes through to the sandbox, which handles it in full and answers; the client then gets
    a read timeout instead of that answer (the "the provider got it but the answer was lost" case).
    Everything else passes through. Unlike a short `http_timeout` with a `lose_response` fault, no
    other request can time out under load, and none can time out before the sandbox has it."""

    def __init__(self) -> None:
        self._through = httpx.AsyncHTTPTransport()
        # (method, path ending or None for any path) whose next answer is lost, one each
        self._to_lose: list[tuple[str, str | None]] = []
        self.lost: list[tuple[str, str]] = []  # (method, path) of the answers lost so far

    def lose_next(self, method: str, path: str | None = None) -> None:
        """Lose the answer to the next request of `method` (whose path ends with `path`, if given)."""
        self._to_lose.append((method.upper(), path))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._through.handle_async_request(request)
        chosen = next(
            (
                (method, path)
                for method, path in self._to_lose
                if method == request.method and (path is None or request.url.path.endswith(path))
            ),
            None,
        )
        if chosen is None:
            return response
        self._to_lose.remove(chosen)
        await response.aread()  # the sandbox acted and answered...
        await response.aclose()
        self.lost.append((request.method, request.url.path))
        raise httpx.ReadTimeout("the answer was lost (LosesAnswers)", request=request)  # ...to nobody

    async def aclose(self) -> None:
        await self._through.aclose()


class HoldsAnswers(httpx.AsyncBaseTransport):
    """A toolkit's transport that holds an answer for as long as a test needs, with no latency to
    outlast: the next request of the method given to `hold_next` goes through to the sandbox, which
    acts on it and answers; `reached` is set then, and the answer is handed to the client only once
    the test calls `release()` (or after 30 s, so a client that waits on its own send fails instead of
    hanging). Everything else passes through."""

    def __init__(self) -> None:
        self._through = httpx.AsyncHTTPTransport()
        self._to_hold: list[str] = []
        self._released = asyncio.Event()
        self.reached = asyncio.Event()
        self.held = 0

    def hold_next(self, method: str) -> None:
        self._to_hold.append(method.upper())

    def release(self) -> None:
        self._released.set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._through.handle_async_request(request)
        if request.method not in self._to_hold:
            return response
        self._to_hold.remove(request.method)
        self.held += 1
        self.reached.set()
        try:
            await asyncio.wait_for(self._released.wait(), 30)
        except TimeoutError:
            pass
        return response

    async def aclose(self) -> None:
        await self._through.aclose()
