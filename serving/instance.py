"""One runtime process serving one revision on a loopback port.

Each instance runs in its own process group (so stopping it also stops anything it started)
and, on Linux, with PR_SET_PDEATHSIG so that the kernel kills it if the platform process dies
without cleaning up (SIGKILL of `par up`): no orphan keeps a port or memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import stat
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import httpx

from .sandbox import enter
from .types import InstanceState

if TYPE_CHECKING:
    from .logs import LogChannel
    from .sandbox import Confined

_PR_SET_PDEATHSIG = 1


class StartFailed(RuntimeError):
    """The instance exited or did not become ready in time; the message says why."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def open_log(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("ab")


def output_start(path: Path) -> int:
    """Where an instance's output begins in `path`: its size for a file, 0 for a FIFO (`logs.py`)."""
    try:
        return 0 if stat.S_ISFIFO(path.stat().st_mode) else path.stat().st_size
    except FileNotFoundError:
        return 0


def die_with(parent_pid: int, sandbox: dict[str, Any] | None = None) -> Callable[[], None] | None:
    """A preexec_fn asking the kernel to SIGKILL the child when its parent dies (Linux only),
    then entering the instance's sandbox before the exec."""
    if not sys.platform.startswith("linux"):
        return None

    def setup() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)
        if sandbox is not None:
            enter(sandbox)

    return setup


def log_tail(path: Path, since: int = 0, max_bytes: int = 1500) -> str:
    """The last lines an instance wrote to its log (from byte `since`), to explain a failed start."""
    try:
        with path.open("rb") as fh:
            fh.seek(max(since, path.stat().st_size - max_bytes))
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [line for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-5:])


class Instance:
    """A started (or starting) runtime process; its `Revision` owns the bookkeeping fields.

    `exited` resolves with the exit code (None when unknown) however the process was started:
    directly by the platform (`spawn`) or forked by the runtime template (`template.py`)."""

    def __init__(
        self, pid: int, port: int, log_path: Path, log_start: int, exited: asyncio.Future[int | None]
    ) -> None:
        self.pid = pid
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.log_start = log_start
        self.state = InstanceState.STARTING
        self.in_flight = 0
        self.started_at = time.monotonic()
        self.ready_at: float | None = None
        self.last_used = self.started_at
        self.exited = exited
        self.confined: Confined | None = None  # its sandbox, released when it has exited
        self.oom_killed = False  # read from its cgroup as it exits
        self.id = str(pid)  # the launcher names it (`logs.instance_id`)
        self.channel: LogChannel | None = None  # its output, when the launcher collects it

    @property
    def returncode(self) -> int | None:
        return self.exited.result() if self.exited.done() else None

    @classmethod
    async def spawn(
        cls,
        command: Sequence[str],
        env: Mapping[str, str],
        log_path: Path,
        port: int,
        cwd: Path | None = None,
        sandbox: dict[str, Any] | None = None,
    ) -> Instance:
        """Start `command` (e.g. `python -m runtime`) as a child of the platform."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_start = output_start(log_path)
        log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)  # a file or a FIFO
        try:
            proc = await asyncio.create_subprocess_exec(
                *command,
                env={**env, "PORT": str(port)},
                cwd=cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # own session and process group: stop() signals the group
                preexec_fn=die_with(os.getpid(), sandbox),
            )
        finally:
            os.close(log)
        return cls(proc.pid, port, log_path, log_start, asyncio.ensure_future(proc.wait()))

    async def wait_ready(self, client: httpx.AsyncClient, within: float) -> None:
        """Poll `/readyz` until 200; raise StartFailed if the process exits or time runs out."""
        deadline = time.monotonic() + within
        delay = 0.002
        while True:
            if self.exited.done():
                raise StartFailed(
                    f"instance exited with code {self.returncode} before it was ready: "
                    f"{self.output() or 'no output'}"
                )
            with contextlib.suppress(httpx.HTTPError):
                response = await client.get(f"{self.url}/readyz", timeout=1.0)
                if response.status_code == 200:
                    self.state = InstanceState.READY
                    self.ready_at = self.last_used = time.monotonic()
                    return
            if time.monotonic() > deadline:
                raise StartFailed(
                    f"instance not ready within {within:.0f}s: {self.output() or 'no output'}"
                )
            await asyncio.wait({self.exited}, timeout=delay)
            delay = min(delay * 1.5, 0.01)

    def output(self) -> str:
        if self.channel is not None:
            return self.channel.output(exited=self.exited.done())
        return log_tail(self.log_path, since=self.log_start)

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    async def stop(self, grace: float) -> None:
        """SIGTERM the process group, SIGKILL it after `grace` seconds."""
        if self.exited.done():
            self._signal_group(signal.SIGKILL)  # reap anything the instance left in its group
            return
        self.state = InstanceState.STOPPING
        self._signal_group(signal.SIGTERM)
        done, _ = await asyncio.wait({self.exited}, timeout=grace)
        if not done:
            self._signal_group(signal.SIGKILL)
            await self.exited
        self._signal_group(signal.SIGKILL)

    def kill_now(self) -> None:
        """Synchronous last resort for interpreter exit paths."""
        self._signal_group(signal.SIGKILL)
