"""Several ASGI apps served by uvicorn in one event loop (one process for the whole platform)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator
from typing import Any

import uvicorn


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to the platform, which stops all servers in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class PortInUse(OSError):
    """The port asked for is taken; the message names the part and the port."""


def bind(name: str, port: int, host: str = "127.0.0.1") -> socket.socket:
    """A listening socket (port 0: any free port), bound before uvicorn sees it so that a taken
    port is a clear error instead of uvicorn exiting the process."""
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets that say so (else +40 ms)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PortInUse(f"{name}: cannot listen on {host}:{port} ({exc.strerror})") from None
    sock.listen(2048)
    sock.set_inheritable(False)
    return sock


class Served:
    """One app on a bound loopback socket, started in the background."""

    def __init__(self, name: str, app: Any, sock: socket.socket, **options: Any) -> None:
        """`options`: uvicorn.Config keywords a part needs (the gateway's `uvicorn_options()`),
        over the platform's defaults."""
        self.name = name
        self._sock = sock
        host, self.port = sock.getsockname()[:2]
        self.url = f"http://{host}:{self.port}"
        defaults: dict[str, Any] = {
            "log_config": None, "access_log": False, "lifespan": "on", "timeout_graceful_shutdown": 5,
        }
        config = uvicorn.Config(app, **{**defaults, **options})
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Serve in the background; return once listening (raise if it failed to start)."""
        self._task = asyncio.create_task(self._server.serve([self._sock]), name=f"serve-{self.name}")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # re-raises the start failure
                raise RuntimeError(f"{self.name} stopped while starting")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await self._task
