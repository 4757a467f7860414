"""A local emulator of the four providers' HTTP APIs, for trying everything without an account.

`create_app()` is the ASGI app; `SandboxServer` runs it on loopback in a background thread (what
`gpu-mcp --sandbox` and `%gpu sandbox` do); `gpu-sandbox --port N` serves it alone.
"""

from __future__ import annotations

import copy
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn

from gpu_tools.sandbox.app import Fault, Sandbox, create_app

__all__ = ["Fault", "Sandbox", "SandboxServer", "create_app", "fill"]


def fill(
    sb: Sandbox, store: str, like: Any, count: int, id_field: str, new_id: Callable[[int], Any]
) -> list[Any]:
    """Add `count` copies of the record `like` of `store` under new ids: a fleet for paging and
    scale tests without `count` creates (e.g. `fill(sb, "neolink.instances", name, 999, "name",
    lambda i: f"instance-{i:08x}")`)."""
    records = sb.store(store)
    ids = []
    for i in range(count):
        record = copy.deepcopy(records[like])
        record[id_field] = new_id(i)
        records[record[id_field]] = record
        ids.append(record[id_field])
    return ids


class SandboxServer:
    """The sandbox app served by uvicorn on 127.0.0.1 in a daemon thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **app_options: Any) -> None:
        self.sandbox = Sandbox(**app_options)
        self.app = create_app(sandbox=self.sandbox)
        self.host = host
        # IPPROTO_TCP named explicitly: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose
        # protocol says TCP, and with Nagle on every answer waited for a delayed ACK (~40 ms).
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="gpu-sandbox", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the sandbox did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._sock.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
