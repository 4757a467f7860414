"""What the people who run a team server see: /metrics, /healthz, /readyz, JSON log lines, and
`gpu-guard --metrics-port`, through real processes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from gpu_tools.sandbox import SandboxServer
from tests.mcp_helpers import Human, structured
from tests.oauth_helpers import Issuer, running_issuer
from tests.pg import NoPostgres, new_database, temporary_postgres
from tests.test_cli import free_port, running
from tests.test_guard_outage import Postgres, wait_for
from tests.test_oauth import ADMIN_TOKEN, ARGS, CREATE, VIEWER_TOKEN, client_for, server_env
from tests.test_oauth import Server as OAuthServer

pytestmark = pytest.mark.anyio

METRICS_TOKEN = "metrics-token-0123456789"


@contextmanager
def gpu_mcp(env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    with running(
        [sys.executable, "-m", "mcp_server", "--transport", "http", "--port", str(port)], env, url
    ) as proc:
        yield url, proc


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with running_issuer() as found:
        yield found


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text, or None."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        found = re.fullmatch(r"([a-z_]+)(\{[^}]*\})? (\S+)", line)
        if not found or found.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', found.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            return float(found.group(3))
    return None


async def test_metrics_after_calls_health_without_a_token_and_json_logs(
    sandbox: SandboxServer, issuer: Issuer, tmp_path: Path
) -> None:
    env = server_env(
        tmp_path,
        sandbox,
        issuer,
        GPU_TOOLS_METRICS_TOKEN=METRICS_TOKEN,
        GPU_TOOLS_BUDGET_USD_PER_DAY="500",
        GPU_TOOLS_LOG_FORMAT="json",
    )
    with gpu_mcp(env) as (url, proc):
        base = url.removesuffix("/mcp")
        server = OAuthServer(url, tmp_path, issuer)
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        ready = httpx.get(f"{base}/readyz")
        assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
        assert httpx.get(f"{base}/metrics").status_code == 401
        assert (
            httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code
            == 401
        )

        writer = issuer.token(url, scope="gpu.read gpu.write", email="op@example.com")
        http, client = client_for(server, writer, elicitation_callback=Human(), mode="legacy")
        async with http, client:
            assert structured(await client.call_tool(CREATE, ARGS))["outcome"] == "done"
        http, client = client_for(server, VIEWER_TOKEN)
        async with http, client:
            assert (await client.call_tool(CREATE, ARGS)).is_error
            assert not (await client.call_tool("list_resources", {})).is_error

        text = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
        proc.terminate()
        logs = proc.communicate(timeout=10)[1]

    assert sample(text, "gpu_tools_tool_calls_total", tool=CREATE, outcome="ok") == 1
    assert sample(text, "gpu_tools_tool_calls_total", tool=CREATE, outcome="refused") == 1
    assert sample(text, "gpu_tools_tool_calls_total", tool="list_resources", outcome="ok") == 1
    assert (
        sample(text, "gpu_tools_provider_requests_total", provider="nebius", operation="POST", status="2xx")
        or 0
    ) >= 1
    assert (sample(text, "gpu_tools_provider_request_seconds_count", provider="nebius") or 0) >= 1
    assert sample(text, "gpu_tools_live_resources", provider="nebius") == 1
    usd = sample(text, "gpu_tools_live_usd_per_hour", provider="nebius")
    assert usd is not None and usd > 0
    left = sample(text, "gpu_tools_budget_left_usd", budget="budget_usd_per_day")
    assert left is not None and 0 < left <= 500
    assert sample(text, "gpu_tools_approvals_pending") == 0
    for secret in (METRICS_TOKEN, VIEWER_TOKEN, ADMIN_TOKEN, writer, ARGS["name"], "op@example.com"):
        assert secret not in text
    # Every metric the README's section and alert rules name is served (the guard's own: by the guard).
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    named = set(re.findall(r"gpu_tools_[a-z_]+[a-z]", readme)) - {
        "gpu_tools_guard_last_pass_timestamp_seconds"
    }
    served = {re.split(r"[{ ]", line)[0] for line in text.splitlines() if line.startswith("gpu_tools_")}
    served |= {re.sub(r"_(bucket|count|sum)$", "", name) for name in served}  # a histogram's series
    assert named and named <= served, named - served

    assert f"OAuth: access tokens of {issuer.url} for audience {url}" in logs
    assert f"keys at {issuer.url}/jwks" in logs  # the start-up banner read the issuer's metadata
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    calls = [line for line in lines if line.get("message") == "tool call"]
    assert {(c["tool"], c["outcome"], c.get("user")) for c in calls} >= {
        (CREATE, "ok", "op@example.com"),
        (CREATE, "refused", "viewer"),
    }
    assert all({"time", "level", "request_id", "tool", "outcome", "duration_ms"} <= c.keys() for c in calls)
    assert next(c for c in calls if c["tool"] == CREATE and c["outcome"] == "ok")["provider"] == "nebius"
    for secret in (METRICS_TOKEN, VIEWER_TOKEN, ADMIN_TOKEN, writer, "sandbox-key"):
        assert secret not in logs


def test_metrics_port_serves_without_a_token(sandbox: SandboxServer, issuer: Issuer, tmp_path: Path) -> None:
    port = free_port()
    with gpu_mcp(server_env(tmp_path, sandbox, issuer, GPU_TOOLS_METRICS_PORT=str(port))) as (url, _):
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert httpx.get(url.removesuffix("/mcp") + "/metrics").status_code != 200  # not on the MCP port
    assert sample(text, "gpu_tools_live_resources", provider="nebius") == 0


def guard_env(home: Path, sandbox: SandboxServer, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "GPU_TOOLS_HOME": str(home),
        "NEBIUS_API_KEY": "sandbox-key",
        "NEBIUS_BASE_URL": f"{sandbox.url}/nebius",
        **extra,
    }


def test_readyz_waits_for_an_expected_guard_and_the_guard_serves_metrics(
    sandbox: SandboxServer, issuer: Issuer, tmp_path: Path
) -> None:
    env = server_env(tmp_path, sandbox, issuer, GPU_TOOLS_GUARD_EXPECTED="true")
    with gpu_mcp(env) as (url, _):
        readyz = url.removesuffix("/mcp") + "/readyz"
        unready = httpx.get(readyz)
        assert (unready.status_code, unready.json()) == (503, {"status": "unready"})  # no detail
        port = free_port()
        args = [sys.executable, "-m", "gpu_tools.guard", "--interval", "30", "--metrics-port", str(port)]
        guard = subprocess.Popen(
            args,
            env=guard_env(tmp_path, sandbox),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(lambda: httpx.get(readyz).status_code == 200, 30, "the guard's heartbeat made it ready")

            def guard_metrics() -> str | None:
                try:
                    return httpx.get(f"http://127.0.0.1:{port}/metrics").text
                except httpx.TransportError:
                    return None

            wait_for(guard_metrics, 30, "gpu-guard serves metrics")
            text = guard_metrics() or ""
        finally:
            guard.terminate()
            guard.wait(timeout=10)
    stamp = sample(text, "gpu_tools_guard_last_pass_timestamp_seconds")
    assert stamp is not None and stamp > 1.7e9


@pytest.fixture
def stoppable_postgres() -> Iterator[str]:
    """A PostgreSQL server of this test's own (it is stopped and started again); its admin URL."""
    try:
        with temporary_postgres(max_connections=20) as url:
            yield url
    except NoPostgres as exc:
        pytest.skip(str(exc))


def test_readyz_is_unready_while_postgresql_is_down(
    sandbox: SandboxServer, issuer: Issuer, tmp_path: Path, stoppable_postgres: str
) -> None:
    journal_url = new_database(stoppable_postgres, "readyz")
    env = server_env(tmp_path, sandbox, issuer, GPU_TOOLS_JOURNAL_URL=journal_url)
    pg = Postgres(stoppable_postgres)
    with gpu_mcp(env) as (url, _):
        readyz = url.removesuffix("/mcp") + "/readyz"
        assert httpx.get(readyz).status_code == 200
        pg.stop()
        try:
            down = httpx.get(readyz, timeout=30)
            assert (down.status_code, down.json()) == (503, {"status": "unready"})
            assert httpx.get(url.removesuffix("/mcp") + "/healthz").status_code == 200  # the process answers
        finally:
            pg.start()


def test_gpu_guard_logs_json_lines(sandbox: SandboxServer, tmp_path: Path) -> None:
    env = guard_env(tmp_path, sandbox, GPU_TOOLS_LOG_FORMAT="json")
    done = subprocess.run(
        [sys.executable, "-m", "gpu_tools.guard", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert {
        "level": "info",
        "logger": "gpu_tools.guard",
        "message": "pass done, 0 action(s).",
    }.items() <= lines[-1].items()
    assert "time" in lines[-1] and "sandbox-key" not in done.stderr + done.stdout
