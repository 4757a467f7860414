"""gpu-guard, a running process, through a PostgreSQL outage: it says so, backs off, keeps looping, and
carries out an expiry that fell due while the database was down, once, when it is back."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from gpu_tools.errors import register_secret
from gpu_tools.gate import Approve
from gpu_tools.guard import backoff, failure_line
from gpu_tools.journal import JournalUnavailable
from gpu_tools.models import MutationResult
from gpu_tools.sandbox import SandboxServer
from gpu_tools.settings import Settings
from gpu_tools.toolkit import Toolkit
from tests.conftest import mutating_requests
from tests.pg import NoPostgres, bindir, new_database, temporary_postgres
from tests.test_guard import NEBIUS, guard_env

PASSWORD = "pw-never-shown"


class Postgres:
    """Stops and starts again the server tests/pg.py started (same data, same port)."""

    def __init__(self, admin_url: str) -> None:
        import psycopg

        with psycopg.connect(admin_url) as conn:
            self.data = Path(str(conn.execute("SHOW data_directory").fetchone()[0]))  # type: ignore[index]
        self.port = admin_url.rsplit(":", 1)[1].split("/")[0]
        self.bin = bindir()
        names = {p.pw_name for p in pwd.getpwall()}
        self.user = None if os.geteuid() != 0 else ("postgres" if "postgres" in names else "nobody")

    def _ctl(self, *args: str) -> None:
        assert self.bin is not None
        run = [str(self.bin / "pg_ctl"), "-D", str(self.data), *args]
        subprocess.run(run, user=self.user, capture_output=True, timeout=60, check=True)

    def stop(self) -> None:
        self._ctl("-m", "fast", "-w", "stop")

    def start(self) -> None:
        root = self.data.parent
        options = f"-p {self.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("-l", str(root / "server.log"), "-w", "-o", options, "start")


GUARD_CLOCK = Path(__file__).parent / "guard_clock.py"


def move_guard_clock(path: Path, seconds: float) -> None:
    """Set the guard's clock to the real time plus `seconds` (written whole, never read half-written)."""
    part = path.with_suffix(".part")
    part.write_text(str(seconds))
    os.replace(part, path)


def wait_for(condition: object, seconds: float, what: str) -> None:
    """Poll a condition another process brings about (its output, the journal, the sandbox's log);
    `seconds` is only a deadline for one that never comes, not a time anything waits for."""
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.fixture
def own_postgres() -> Iterator[str]:
    """A PostgreSQL server of this test's own (it is stopped and started again); its admin URL."""
    try:
        with temporary_postgres(max_connections=20) as url:
            yield url
    except NoPostgres as exc:
        pytest.skip(str(exc))


def create(tk: Toolkit, args: dict[str, object]) -> str:
    result = anyio.run(lambda: tk.call("nebius_create_endpoint", args, confirmer=Approve()))
    assert isinstance(result, MutationResult) and result.resource is not None
    return result.resource.resource_id


def test_gpu_guard_survives_a_database_outage_and_carries_out_the_expiry_that_fell_due_in_it(
    sandbox: SandboxServer,
    gpu_home: Path,
    own_postgres: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    admin = own_postgres
    proc = None
    try:
        pg = Postgres(admin)
        url = new_database(admin, "journal").replace("gpu@", f"gpu:{PASSWORD}@")  # trust: any password
        # The guard and this test share the journal of these settings, like a team's real providers.
        env = guard_env(sandbox, gpu_home, GPU_TOOLS_JOURNAL_URL=url)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        tk = Toolkit(Settings())
        made = create(tk, {**NEBIUS, "expires_in": "5m"})
        tk.close()

        # The guard's clock is moved by hand (tests/guard_clock.py): no test waits for an expiry.
        clock = tmp_path / "guard-clock"
        move_guard_clock(clock, 0)
        proc = subprocess.Popen(
            [sys.executable, str(GUARD_CLOCK), "--interval", "0.2"],
            env={**env, "GUARD_CLOCK_FILE": str(clock)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
        reader.start()

        def failures() -> int:
            return sum("pass failed" in line for line in list(lines))

        def deleted() -> list[dict[str, object]]:
            return [r for r in mutating_requests(sandbox) if r["method"] == "DELETE"]

        running = Toolkit(Settings())
        wait_for(
            lambda: running.journal.meta("guard_last_pass") is not None or proc.poll() is not None,
            60,
            "no pass",
        )
        assert proc.poll() is None, proc.communicate()
        running.close()
        assert deleted() == []  # five minutes to go: the guard's passes leave the endpoint alone

        pg.stop()
        # Six minutes pass for the guard while the database is down: the expiry falls due in the outage.
        move_guard_clock(clock, 6 * 60)
        after_move = failures()
        wait_for(lambda: failures() >= after_move + 2, 60, "the guard said nothing")
        assert proc.poll() is None, "the guard died with the database"
        assert deleted() == []
        assert [r for r in mutating_requests(sandbox) if r["method"] == "DELETE"] == []
        pg.start()
        wait_for(lambda: len(deleted()) >= 1, 60, "the overdue expiry was not carried out")
        after = Toolkit(Settings())
        first = after.journal.meta("guard_last_pass")
        wait_for(lambda: after.journal.meta("guard_last_pass") != first, 60, "no pass after the delete")
        after.close()
        assert len(deleted()) == 1 and made in str(deleted()[0]["path"])
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        reader.join(timeout=5)
        said = "".join(lines) + out + err
        assert proc.returncode == 0, err
        failed = [line for line in said.splitlines() if "pass failed" in line]
        assert failed and all("next try in" in line for line in failed)
        assert "passes work again" in said and f"expired: delete nebius {made}" in said
        assert PASSWORD not in said and "Traceback" not in said
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_the_back_off_doubles_from_the_interval_and_is_bounded() -> None:
    assert [backoff(60, n) for n in range(6)] == [60, 120, 240, 300, 300, 300]
    assert [backoff(0.2, n) for n in (0, 1, 4, 10, 1000)] == [0.2, 0.4, 3.2, 3.2, 3.2]
    assert backoff(600, 3) == 600  # never less than the interval


def test_a_failed_pass_is_one_line_with_no_secret() -> None:
    register_secret("s3cret-password-x")
    line = failure_line(ConnectionError("server closed the connection s3cret-password-x\nmore"))
    assert line == "ConnectionError: server closed the connection ***"
    assert failure_line(JournalUnavailable("cannot reach\n the journal")) == "cannot reach the journal"
