"""Issue 17: a package with no entrypoint and no surface (which `pixell build` refuses: "Entrypoint is
required when no surfaces are configured") deployed and was reported Ready, serving nothing. It is
refused at upload with 422 `no_surfaces`, as `runtime.apkg` refuses it everywhere."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from gateway.apikeys import generate_key
from registry.app import create_app
from registry.settings import RegistrySettings
from runtime.apkg import ApkgError, validate
from tests.support.apkgs import repack

pytestmark = pytest.mark.integration
SURFACES = ("entrypoint", "rest", "a2a", "ui", "http_server")


def _without(apkg: Path, dest: Path, keep: str | None = None) -> Path:
    with zipfile.ZipFile(apkg) as zf:
        manifest = yaml.safe_load(zf.read("agent.yaml"))
    for name in SURFACES:
        if name != keep:
            manifest.pop(name, None)
    return repack(apkg, dest, replace={"agent.yaml": yaml.safe_dump(manifest).encode()})


def test_runtime_refuses_a_package_that_serves_nothing(demo_apkg_kit: Path, tmp_path: Path) -> None:
    with pytest.raises(ApkgError) as refused:
        validate(_without(demo_apkg_kit, tmp_path / "bare.apkg"))
    assert refused.value.code == "no_surfaces" and "nothing to serve" in str(refused.value)
    for keep in ("entrypoint", "rest", "a2a", "ui"):  # any one surface is enough, as for pixell build
        kept = _without(demo_apkg_kit, tmp_path / f"{keep}.apkg", keep)
        assert validate(kept).manifest.name == "demo-agent"


def test_registry_upload_is_422_no_surfaces(
    demo_apkg_kit: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("PAR_ADMIN_KEY", "DATABASE_URL", "PAR_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    admin = generate_key()[1]
    bare = _without(demo_apkg_kit, tmp_path / "bare.apkg")
    app = create_app(RegistrySettings(data_dir=tmp_path / "registry", admin_key=admin))
    with TestClient(app) as client, bare.open("rb") as fh:
        response = client.post(
            "/v1/namespaces/default/packages", files={"file": (bare.name, fh, "application/zip")},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "no_surfaces"
        agents = client.get("/v1/agents", headers={"Authorization": f"Bearer {admin}"}).json()["items"]
        assert agents == []  # nothing registered, so nothing to deploy or report Ready
