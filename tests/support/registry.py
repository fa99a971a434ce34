"""A real registry server (uvicorn on a loopback port, in a thread of the test process) for tests.

`registry_database` is parametrized: every test that uses it (through `registry`) runs once on
SQLite and once on a real PostgreSQL server (tests.support.postgres). The default backend is the
recording one, reachable as `RunningRegistry.backend` to see what the registry asked of it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from registry.app import create_app
from registry.backends.base import DeployBackend
from registry.backends.recording import RecordingBackend
from registry.settings import RegistrySettings
from tests.support.net import free_port, wait_http


@dataclass
class RunningRegistry:
    url: str
    admin_key: str
    settings: RegistrySettings
    backend: DeployBackend
    announced: list[str]

    def client(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {key or self.admin_key}"}, timeout=30.0
        )


@contextmanager
def run_registry(
    settings: RegistrySettings,
    backend: DeployBackend | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
) -> Iterator[RunningRegistry]:
    """Start the registry app under uvicorn (a free loopback port by default); stop it on exit."""
    port = port or free_port()
    announced: list[str] = []
    backend = backend or RecordingBackend()
    app = create_app(settings, port=port, backend=backend, announce=lambda key, _s: announced.append(key))
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz", timeout=30)
        key = settings.admin_key or (settings.data_dir / "admin.key").read_text().strip()
        yield RunningRegistry(url, key, settings, backend, announced)
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_database(request: pytest.FixtureRequest) -> str | None:
    """None for the default SQLite file, else the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("fresh_database")


@pytest.fixture
def registry_settings(tmp_path: Path, registry_database: str | None) -> RegistrySettings:
    return RegistrySettings(data_dir=tmp_path / "registry", database_url=registry_database, db_timeout=3.0)


@pytest.fixture
def registry(registry_settings: RegistrySettings) -> Iterator[RunningRegistry]:
    with run_registry(registry_settings) as running:
        yield running
