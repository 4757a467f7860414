"""A local emulator of the four providers' HTTP APIs, for trying everything without an account.

`create_app()` is the ASGI app; `SandboxServer` runs it on loopback in a background thread (what
`gpu-mcp --sandbox` and `%gpu sandbox` do); `gpu-sandbox --port N` serves it alone.
"""

from __future__ import annotations

import copy
import select
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn

from gpu_tools.sandbox.app import create_app
from gpu_tools.sandbox.state import Fault, Sandbox

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


class _Server(uvicorn.Server):
    """uvicorn's server, saying when it serves through an event instead of a flag to poll."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self.ready.set()


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
        # Listening from here on: a request sent before uvicorn serves waits in the backlog, so a
        # caller may go on (build a server, say) while the sandbox starts.
        self._sock.listen(2048)
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False, ws="none")
        self._server = _Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def serving(self) -> bool:
        return self._server.ready.is_set()

    def start(self, *, wait: bool = True, on_first_request: bool = False) -> SandboxServer:
        """Serve in a daemon thread; `wait=False` returns at once (call `wait_started` later).

        `on_first_request=True` (implies not waiting): the thread sleeps in `select` until the first
        connection reaches the listening socket, and only then starts uvicorn, which takes that
        connection from the backlog. A process whose first work is something else (an MCP server
        answering initialize and tools/list) does not share the interpreter with the sandbox's
        start-up meanwhile; the first request waits for it instead (some 20 ms)."""
        target = self._serve_when_asked if on_first_request else self._serve
        self._thread = threading.Thread(target=target, name="gpu-sandbox", daemon=True)
        self._thread.start()
        if wait and not on_first_request:
            self.wait_started()
        return self

    def _serve_when_asked(self) -> None:
        while not self._server.should_exit:
            if select.select([self._sock], [], [], 0.2)[0]:
                self._serve()
                return

    def _serve(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        finally:
            if not self._server.ready.is_set():  # said on stderr: a caller that did not wait sees it
                print(f"gpu-sandbox: could not serve on {self.url}", file=sys.stderr, flush=True)

    def wait_started(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not self._server.ready.wait(0.05):
            if time.monotonic() > deadline or self._thread is None or not self._thread.is_alive():
                raise RuntimeError("the sandbox did not start")

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._sock.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
