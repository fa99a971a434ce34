"""A real `redis-server` (Debian's package, installed by scripts/services.sh) on a free loopback
port in a temporary directory, for the gateway's Redis rate-limit backend."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import require_service
from tests.support.net import free_port


@contextmanager
def redis_server(workdir: Path | None = None, timeout: float = 10.0) -> Iterator[str]:
    """Start redis-server (no persistence, loopback only); yield its `redis://` URL; stop it."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server is not installed (run scripts/services.sh)")
    with tempfile.TemporaryDirectory(prefix="par-redis-", dir=workdir) as tmp:
        port = free_port()
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                tmp,
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=open(Path(tmp) / "redis.log", "wb"),  # noqa: SIM115 - closed with the process
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_port(port, proc, timeout)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_port(port: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"redis-server did not answer on port {port} within {timeout}s")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a session-wide real redis-server; tests use distinct key names."""
    require_service(shutil.which("redis-server") is not None, "redis-server")
    with redis_server() as url:
        yield url
