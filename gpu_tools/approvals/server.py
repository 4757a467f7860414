"""The approval page of a stdio server (and of `%gpu`): a loopback web server in a daemon thread,
bound to 127.0.0.1 only, started the first time an approval needs the page."""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING

import uvicorn

from gpu_tools.approvals.page import build_app

if TYPE_CHECKING:
    from gpu_tools.approvals import Approvals


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self.ready.set()

    def install_signal_handlers(self) -> None:  # a thread of a process that owns its signals
        pass


class LoopbackPage:
    """The page at http://localhost:<port> (`approval_port`; 0: a free port). Its Host must be
    `localhost:<port>` or `127.0.0.1:<port>`: a page reached through any other name is refused."""

    def __init__(self, approvals: Approvals, port: int = 0) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        app = build_app(approvals, self.hosts)
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False, ws="none")
        self._server = _Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"  # a name, not an IP: the passkeys' relying-party id

    def hosts(self) -> list[str]:
        return [f"localhost:{self.port}", f"127.0.0.1:{self.port}"]

    def start(self) -> LoopbackPage:
        self._thread = threading.Thread(
            target=lambda: self._server.run(sockets=[self._sock]), name="gpu-approvals", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.ready.wait(0.05):
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the approval page could not be served on {self.url}")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._sock.close()
