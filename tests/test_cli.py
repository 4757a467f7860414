"""The long-running commands as a person starts them: gpu-sandbox and gpu-mcp over HTTP."""

from __future__ import annotations

import logging
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from gpu_tools.errors import RedactingFilter
from gpu_tools.settings import Settings

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}


TOKEN = "tok-abc-0123456789abc"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running(args: list[str], env: dict[str, str], url: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_gpu_sandbox_serves_and_says_how_to_connect(gpu_home: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "GPU_TOOLS_HOME": str(gpu_home)}
    args = [sys.executable, "-m", "gpu_tools.sandbox.cli", "--port", str(port), "--api-key", "k-123"]
    with running(args, env, f"{base}/_sandbox/requests") as proc:
        r = httpx.get(
            f"{base}/nebius/v0/dedicated_endpoints/templates", headers={"Authorization": "Bearer k-123"}
        )
        assert r.status_code == 200 and r.json()["templates"]
        assert httpx.get(f"{base}/_sandbox/requests").json()[-1]["headers"]["authorization"] == "Bearer ***"
        proc.terminate()
        banner = proc.communicate(timeout=10)[1]
    assert f"serving the provider emulator on {base}" in banner and "NEBIUS_BASE_URL" in banner


def test_gpu_mcp_http_requires_the_bearer_token(gpu_home: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    env = {**os.environ, "GPU_TOOLS_HOME": str(gpu_home), "GPU_TOOLS_HTTP_TOKEN": TOKEN}
    args = [sys.executable, "-m", "mcp_server", "--sandbox", "--transport", "http", "--port", str(port)]
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    with running(args, env, url) as proc:
        assert httpx.post(url, json=INITIALIZE, headers=headers).status_code == 401
        wrong = httpx.post(url, json=INITIALIZE, headers={**headers, "Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = httpx.post(url, json=INITIALIZE, headers={**headers, "Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and "gpu-tools" in ok.text
        proc.terminate()
        banner = proc.communicate(timeout=10)[1]
    assert f"http://127.0.0.1:{port}/mcp" in banner and "SANDBOX" in banner and TOKEN not in banner


def test_gpu_mcp_http_checks_host_and_origin_on_every_bind_address(gpu_home: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    env = {
        **os.environ,
        "GPU_TOOLS_HOME": str(gpu_home),
        "GPU_TOOLS_HTTP_TOKEN": TOKEN,
        "GPU_TOOLS_HTTP_ALLOWED_HOSTS": '["gpu.team.example"]',
    }
    args = [sys.executable, "-m", "mcp_server", "--sandbox", "--transport", "http"]
    args += ["--host", "0.0.0.0", "--port", str(port)]
    base = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    with running(args, env, url) as proc:

        def post(**headers: str) -> httpx.Response:
            return httpx.post(url, json=INITIALIZE, headers={**base, **headers})

        # The scheme is case-insensitive; the 401 names the Bearer scheme (RFC 6750 §3) and invites no
        # OAuth discovery (no resource_metadata); a wrong bearer token is invalid_token.
        assert post(Authorization=f"bearer {TOKEN}").status_code == 200
        assert post(Authorization=f"BEARER {TOKEN}").status_code == 200
        refused = post(Authorization=f"Basic {TOKEN}")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Bearer realm="gpu-mcp"'
        wrong = post(Authorization="Bearer not-the-token-0123456789")
        assert wrong.status_code == 401
        assert wrong.headers["www-authenticate"] == 'Bearer realm="gpu-mcp", error="invalid_token"'
        assert "Authorization: Bearer" in refused.text
        # DNS rebinding: a name nobody allowed is refused even though the server binds 0.0.0.0.
        assert post(Authorization=f"Bearer {TOKEN}", Host="evil.example").status_code == 421
        assert post(Authorization=f"Bearer {TOKEN}", Origin="http://evil.example").status_code == 403
        assert post(Authorization=f"Bearer {TOKEN}", Host="gpu.team.example").status_code == 200
        assert post(Authorization=f"Bearer {TOKEN}", Host=f"gpu.team.example:{port}").status_code == 200
        proc.terminate()
        banner = proc.communicate(timeout=10)[1]
    assert "Host/Origin checks accept" in banner and "gpu.team.example" in banner


# ---- configuration that would fail open refuses to start -------------------------------------------------
ALICE = "tok-alice-0123456789"


@pytest.mark.parametrize(
    ("env", "host", "setting", "secret"),
    [
        ({"GPU_TOOLS_HTTP_TOKENS": '{"": "alice"}'}, "127.0.0.1", "http_tokens", None),
        ({"GPU_TOOLS_HTTP_TOKENS": '{"   ": "alice"}'}, "127.0.0.1", "http_tokens", None),
        ({"GPU_TOOLS_HTTP_TOKENS": '{"tok-short": "alice"}'}, "127.0.0.1", "http_tokens", "tok-short"),
        (
            {"GPU_TOOLS_HTTP_TOKENS": f'{{"{ALICE}": "alice", "{ALICE}": "bob"}}'},
            "127.0.0.1",
            "http_tokens",
            ALICE,
        ),
        ({"GPU_TOOLS_HTTP_TOKEN": ""}, "127.0.0.1", "http_token", None),
        ({"GPU_TOOLS_HTTP_TOKEN": "tok-short-2"}, "127.0.0.1", "http_token", "tok-short-2"),
        (
            {"GPU_TOOLS_HTTP_TOKEN": ALICE, "GPU_TOOLS_HTTP_TOKENS": f'{{"{ALICE}": "alice"}}'},
            "127.0.0.1",
            "http_token",
            ALICE,
        ),
        ({}, "0.0.0.0", "http_tokens and http_token", None),
    ],
    ids=["empty", "whitespace", "short", "duplicate", "empty-single", "short-single", "both", "none-public"],
)
def test_gpu_mcp_refuses_to_start_on_a_configuration_that_would_fail_open(
    gpu_home: Path, env: dict[str, str], host: str, setting: str, secret: str | None
) -> None:
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GPU_TOOLS_HTTP_TOKEN")}
    run = subprocess.run(
        [sys.executable, "-m", "mcp_server", "--sandbox", "--transport", "http"]
        + ["--host", host, "--port", str(port)],
        env={**clean, "GPU_TOOLS_HOME": str(gpu_home), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2, run.stderr
    [line] = run.stderr.splitlines()
    assert line.startswith("gpu-mcp: ") and setting in line
    assert "bad setting: settings:" not in line  # the setting itself is named, not a placeholder
    assert secret is None or secret not in line  # and the process has ended: nothing serves anyone


@pytest.mark.parametrize(
    ("command", "name"),
    [(["mcp_server", "--transport", "http"], "gpu-mcp"), (["gpu_tools.guard", "--once"], "gpu-guard")],
)
@pytest.mark.parametrize(
    "config",
    [
        f'[http_tokens]\n"{ALICE}" = "alice"\n"{ALICE}" = "bob"\n'.encode(),  # a duplicate key
        b"max_usd_per_hour = \n",
        b"budget_usd_per_day = 10\n\xff\n",  # not UTF-8
    ],
    ids=["duplicate-key", "syntax", "not-utf8"],
)
def test_a_config_file_that_is_not_toml_stops_each_command_with_one_line(
    gpu_home: Path, command: list[str], name: str, config: bytes
) -> None:
    gpu_home.mkdir(parents=True, exist_ok=True)
    (gpu_home / "config.toml").write_bytes(config)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GPU_TOOLS_HTTP_TOKEN")}
    run = subprocess.run(
        [sys.executable, "-m", *command],
        env={**clean, "GPU_TOOLS_HOME": str(gpu_home)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2, run.stderr
    [line] = run.stderr.splitlines()
    assert line.startswith(f"{name}: bad setting: {gpu_home / 'config.toml'} cannot be read as TOML"), line
    assert ALICE not in line


@pytest.mark.parametrize("command", [["mcp_server"], ["gpu_tools.guard", "--once"]])
def test_a_list_setting_that_is_not_json_names_the_setting_and_the_environment(
    gpu_home: Path, command: list[str]
) -> None:
    run = subprocess.run(
        [sys.executable, "-m", *command],
        env={
            **os.environ,
            "GPU_TOOLS_HOME": str(gpu_home),
            "GPU_TOOLS_HTTP_ALLOWED_HOSTS": "[sekrit.example",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2, run.stderr
    [line] = run.stderr.splitlines()
    assert "bad setting: http_allowed_hosts cannot be parsed (from the environment)" in line, line
    assert "sekrit" not in line and "config.toml" not in line


def test_a_generated_token_goes_to_a_private_file_never_to_stderr(gpu_home: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GPU_TOOLS_HTTP_TOKEN")}
    env = {**clean, "GPU_TOOLS_HOME": str(gpu_home)}
    args = [sys.executable, "-m", "mcp_server", "--sandbox", "--transport", "http", "--port", str(port)]
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    path = gpu_home / "http-token"
    with running(args, env, url) as proc:
        token = path.read_text().strip()
        assert len(token) >= 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
        assert httpx.post(url, json=INITIALIZE, headers=headers).status_code == 401
        ok = httpx.post(url, json=INITIALIZE, headers={**headers, "Authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and "gpu-tools" in ok.text
        proc.terminate()
        banner = proc.communicate(timeout=10)[1]
    assert f"cat {path}" in banner
    assert not [line for line in banner.splitlines() if token in line]


def test_every_configured_token_is_a_secret_that_logs_never_show(gpu_home: Path) -> None:
    single, bob, key = "tok-single-0123456789", "tok-bob-0123456789", "k" * 40
    Settings(http_token=single, http_tokens={bob: "bob"}, http_state_key=key)
    record = logging.LogRecord("t", logging.WARNING, __file__, 1, f"{single} {bob} {key}", None, None)
    assert RedactingFilter().filter(record) and record.getMessage() == "*** *** ***"
