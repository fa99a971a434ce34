"""When the database or the deploy backend is unavailable the registry answers 503 and writes nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from registry.backends.errors import BackendError, BackendRejected
from registry.backends.recording import RecordingBackend
from registry.settings import RegistrySettings
from registry.spec import DeploymentSpec, DeploymentStatus
from tests.support.postgres import start_postgres
from tests.support.registry import run_registry

pytestmark = pytest.mark.integration
NS = "/v1/namespaces/default"


def _assert_503(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"]


def test_sqlite_locked_by_another_writer(tmp_path: Path) -> None:
    settings = RegistrySettings(data_dir=tmp_path, db_timeout=0.5)
    with run_registry(settings) as registry, registry.client() as c:
        holder = sqlite3.connect(tmp_path / "registry.db", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            _assert_503(c.post(f"{NS}/agents", json={"name": "lost"}))
            _assert_503(c.post("/v1/keys", json={"tenant": "t"}))
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert c.get("/v1/agents").json()["items"] == []
        assert len(c.get("/v1/keys").json()["items"]) == 1  # the admin key only
        assert c.post(f"{NS}/agents", json={"name": "kept"}).status_code == 201


def test_postgresql_server_down_then_back(tmp_path: Path) -> None:
    server = start_postgres()
    try:
        url = server.create_database()
        settings = RegistrySettings(data_dir=tmp_path, database_url=url, db_timeout=2.0)
        with run_registry(settings) as registry, registry.client() as c:
            assert c.post(f"{NS}/agents", json={"name": "before"}).status_code == 201
            server.stop()
            _assert_503(c.post(f"{NS}/agents", json={"name": "during"}))
            _assert_503(c.get("/readyz"))
            server.start()
            names = [a["name"] for a in c.get("/v1/agents").json()["items"]]
            assert names == ["before"]
    finally:
        server.cleanup()


class FailingBackend(RecordingBackend):
    def __init__(self, error: BackendError) -> None:
        super().__init__()
        self.error = error

    async def deploy(self, spec: DeploymentSpec) -> DeploymentStatus:
        raise self.error


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (BackendError("kubernetes API unreachable"), 503),
        (BackendRejected("admission webhook denied it"), 422),
    ],
)
def test_backend_failure_leaves_the_deployment_unchanged(
    tmp_path: Path, demo_apkg_kit: Path, error: BackendError, status: int
) -> None:
    settings = RegistrySettings(data_dir=tmp_path)
    with run_registry(settings, FailingBackend(error)) as registry, registry.client() as c:
        with demo_apkg_kit.open("rb") as fh:
            assert c.post(f"{NS}/packages", files={"file": ("a.apkg", fh)}).status_code == 201
        failed = c.put(f"{NS}/agents/demo-agent/deployment", json={})
        assert failed.status_code == status and failed.headers["content-type"] == "application/problem+json"
        assert str(error) in failed.json()["detail"]
        assert c.get(f"{NS}/agents/demo-agent/deployment").status_code == 404
        assert c.get(f"{NS}/agents/demo-agent").json()["status"]["phase"] == "absent"


def test_oversized_upload_is_413_and_not_kept(tmp_path: Path, demo_apkg_kit: Path) -> None:
    settings = RegistrySettings(data_dir=tmp_path, max_package_bytes=1024)
    with run_registry(settings) as registry, registry.client() as c:
        with demo_apkg_kit.open("rb") as fh:
            refused = c.post(f"{NS}/packages", files={"file": ("a.apkg", fh)})
        assert refused.status_code == 413 and "1024" in refused.json()["detail"]
        assert c.get("/v1/agents").json()["items"] == []
    assert [p for p in (tmp_path / "artifacts").rglob("*") if p.is_file()] == []
