"""A real PostgreSQL server for tests, from Debian's binaries (`scripts/services.sh` installs them).

`PostgresServer` runs `initdb` + `postgres` in a temporary folder on a free loopback port (as the
`postgres` system user when the tests run as root, since PostgreSQL refuses to run as root), with
durability switched off for speed. `postgres_server` is one per test session; `fresh_database`
gives each test its own empty database on it.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_service
from tests.support.net import free_port


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PostgresServer:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="par-pg-"))
        self.datadir = self.root / "data"
        self.proc: subprocess.Popen[bytes] | None = None
        self._user: dict[str, str] = {}
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self._user = {"user": "postgres", "group": "postgres"}

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def start(self, timeout: float = 30.0) -> None:
        if not self.datadir.exists():
            initdb = [str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", "postgres", "-A", "trust"]
            subprocess.run(
                [*initdb, "-E", "UTF8", "--no-sync"],
                check=True, capture_output=True, timeout=120, cwd=self.root, **self._user,
            )
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.root),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        options = [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
        log = open(self.root / "postgres.log", "ab")  # noqa: SIM115 - handed to the child process
        with log:
            self.proc = subprocess.Popen(
                [str(self.bindir / "postgres"), "-D", str(self.datadir), "-p", str(self.port), *options],
                stdout=subprocess.DEVNULL, stderr=log, cwd=self.root, **self._user,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = subprocess.run(
                [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"],
                capture_output=True,
                check=False,
            )
            if ready.returncode == 0:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL did not start: {(self.root / 'postgres.log').read_text()[-2000:]}")

    def sql(self, statement: str) -> None:
        subprocess.run(
            [
                str(self.bindir / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-c",
                statement,
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.sql(f"CREATE DATABASE {name}")
        return self.database_url(name)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # "fast" shutdown: disconnects clients, no waiting
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres() -> PostgresServer:
    """A started server, or a skip (a failure in CI) when Debian's PostgreSQL is not installed."""
    bindir = postgres_bin()
    require_service(bindir is not None, "PostgreSQL (Debian package postgresql)")
    assert bindir is not None
    server = PostgresServer(bindir)
    server.start()
    return server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = start_postgres()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def fresh_database(postgres_server: PostgresServer) -> str:
    """The URL of a new, empty database on the session's server."""
    return postgres_server.create_database()
