"""The issue's acceptance, as a new user runs it: `par registry serve`, a key from its API, then
`par gateway serve --mode authz` fed by that registry (two real processes)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.support.gateway import HOST, run_par
from tests.support.net import free_port

pytestmark = pytest.mark.integration

REFRESH = 0.5


def test_registry_key_allows_missing_key_denies_revoked_key_stops(tmp_path: Path) -> None:
    registry_port, gateway_port = free_port(), free_port()
    registry = f"http://127.0.0.1:{registry_port}"
    gateway = f"http://127.0.0.1:{gateway_port}"
    data = tmp_path / "registry"
    clean = {"PAR_ADMIN_KEY": "", "PAR_DATABASE_URL": "", "PAR_DATA_DIR": str(data)}
    registry_args = ["registry", "serve", "--data-dir", str(data), "--port", str(registry_port)]
    with run_par(registry_args, f"{registry}/healthz", tmp_path / "registry.log", clean):
        admin = (data / "admin.key").read_text().strip()
        with httpx.Client(base_url=registry, headers={"Authorization": f"Bearer {admin}"}) as api:
            created = api.post("/v1/keys", json={"tenant": "default"}).json()
        key = created["key"]
        env = {
            "PAR_REGISTRY_URL": registry,
            "PAR_ADMIN_KEY": admin,
            "PAR_GATEWAY_REFRESH_INTERVAL": str(REFRESH),
        }
        gateway_args = ["gateway", "serve", "--mode", "authz", "--port", str(gateway_port)]
        with run_par(gateway_args, f"{gateway}/readyz", tmp_path / "gateway.log", env):
            with_key = {"Host": HOST, "Authorization": f"Bearer {key}"}
            assert httpx.get(f"{gateway}/", headers=with_key).status_code == 200
            assert httpx.get(f"{gateway}/", headers={"Host": HOST}).status_code == 401

            with httpx.Client(base_url=registry, headers={"Authorization": f"Bearer {admin}"}) as api:
                assert api.delete(f"/v1/keys/{created['id']}").status_code == 200
            revoked_at = time.monotonic()
            while httpx.get(f"{gateway}/", headers=with_key).status_code == 200:
                assert time.monotonic() - revoked_at < REFRESH + 1.5, "revoked key still admitted"
                time.sleep(0.05)
            assert httpx.get(f"{gateway}/", headers=with_key).status_code == 401
