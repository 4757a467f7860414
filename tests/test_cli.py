"""The long-running commands as a person starts them: gpu-sandbox and gpu-mcp over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

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
    env = {**os.environ, "GPU_TOOLS_HOME": str(gpu_home), "GPU_TOOLS_HTTP_TOKEN": "tok-abc"}
    args = [sys.executable, "-m", "mcp_server", "--sandbox", "--transport", "http", "--port", str(port)]
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    with running(args, env, url) as proc:
        assert httpx.post(url, json=INITIALIZE, headers=headers).status_code == 401
        wrong = httpx.post(url, json=INITIALIZE, headers={**headers, "Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = httpx.post(url, json=INITIALIZE, headers={**headers, "Authorization": "Bearer tok-abc"})
        assert ok.status_code == 200 and "gpu-tools" in ok.text
        proc.terminate()
        banner = proc.communicate(timeout=10)[1]
    assert f"http://127.0.0.1:{port}/mcp" in banner and "SANDBOX" in banner and "tok-abc" not in banner


def test_gpu_mcp_http_checks_host_and_origin_on_every_bind_address(gpu_home: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    env = {
        **os.environ,
        "GPU_TOOLS_HOME": str(gpu_home),
        "GPU_TOOLS_HTTP_TOKEN": "tok-abc",
        "GPU_TOOLS_HTTP_ALLOWED_HOSTS": '["gpu.team.example"]',
    }
    args = [sys.executable, "-m", "mcp_server", "--sandbox", "--transport", "http"]
    args += ["--host", "0.0.0.0", "--port", str(port)]
    base = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    with running(args, env, url) as proc:

        def post(**headers: str) -> httpx.Response:
            return httpx.post(url, json=INITIALIZE, headers={**base, **headers})

        # The scheme is case-insensitive; the 401 invites no OAuth discovery.
        assert post(Authorization="bearer tok-abc").status_code == 200
        assert post(Authorization="BEARER tok-abc").status_code == 200
        refused = post(Authorization="Basic tok-abc")
        assert refused.status_code == 401 and "www-authenticate" not in refused.headers
        assert "Authorization: Bearer" in refused.text
        # DNS rebinding: a name nobody allowed is refused even though the server binds 0.0.0.0.
        assert post(Authorization="Bearer tok-abc", Host="evil.example").status_code == 421
        assert post(Authorization="Bearer tok-abc", Origin="http://evil.example").status_code == 403
        assert post(Authorization="Bearer tok-abc", Host="gpu.team.example").status_code == 200
        assert post(Authorization="Bearer tok-abc", Host=f"gpu.team.example:{port}").status_code == 200
        proc.terminate()
        banner = proc.communicate(timeout=10)[1]
    assert "Host/Origin checks accept" in banner and "gpu.team.example" in banner
