"""The gateway fed by a real registry server (`GET /v1/gateway/snapshot`, ETag/304): keys issued
and revoked through the registry API take effect within the refresh interval."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.authz import build_authz_app
from gateway.settings import GatewaySettings
from registry.settings import RegistrySettings
from tests.support.gateway import HOST, serve
from tests.support.registry import RunningRegistry, run_registry

pytestmark = pytest.mark.integration

REFRESH = 0.3


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RunningRegistry]:
    with run_registry(RegistrySettings(data_dir=tmp_path / "registry")) as running:
        yield running


def wait_for(predicate, within: float) -> float:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < within, "condition not reached in time"
        time.sleep(0.02)
    return time.monotonic() - started


def test_keys_from_the_registry_allow_deny_and_revoke(registry: RunningRegistry) -> None:
    with registry.client() as admin:
        created = admin.post("/v1/keys", json={"tenant": "default", "name": "gw-test"})
        assert created.status_code == 201, created.text
        key, key_id = created.json()["key"], created.json()["id"]
        other = admin.post("/v1/keys", json={"tenant": "globex"}).json()["key"]

    settings = GatewaySettings(
        registry_url=registry.url, registry_key=registry.admin_key, refresh_interval=REFRESH
    )
    app = build_authz_app(settings)
    with serve(app) as gateway:
        auth = {"Host": HOST, "Authorization": f"Bearer {key}"}
        allowed = httpx.get(gateway, headers=auth)
        assert allowed.status_code == 200 and allowed.headers["x-par-key-id"] == key_id
        assert httpx.get(gateway, headers={"Host": HOST}).status_code == 401
        assert (
            httpx.get(gateway, headers={"Host": HOST, "Authorization": f"Bearer {other}"}).status_code == 403
        )
        admin_call = httpx.get(
            gateway, headers={"Host": "x.y", "Authorization": f"Bearer {registry.admin_key}"}
        )
        assert admin_call.status_code == 200

        feed = app.authorizer.policy
        loaded = feed.current()
        time.sleep(REFRESH * 3)  # unchanged registry: 304s, the same snapshot object stays
        assert feed.current() is loaded and feed._etag

        with registry.client() as admin:
            assert admin.delete(f"/v1/keys/{key_id}").status_code == 200
        took = wait_for(lambda: httpx.get(gateway, headers=auth).status_code == 401, within=REFRESH + 1.0)
        assert httpx.get(gateway, headers=auth).json()["code"] == "revoked_key"
        print(f"revocation took effect after {took:.2f}s (refresh interval {REFRESH}s)")


def test_a_gateway_the_registry_refuses_is_not_ready_and_denies(registry: RunningRegistry) -> None:
    settings = GatewaySettings(registry_url=registry.url, registry_key="par_000000000000_" + "A" * 43)
    with serve(build_authz_app(settings)) as gateway:
        assert httpx.get(f"{gateway}/readyz").status_code == 503
        denied = httpx.get(gateway, headers={"Host": HOST, "Authorization": f"Bearer {registry.admin_key}"})
        assert denied.status_code == 503 and denied.json()["code"] == "policy_unavailable"
        assert "answered 401" in httpx.get(f"{gateway}/readyz").json()["reason"]


def test_par_registry_url_and_par_api_key_are_enough(
    registry: RunningRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The names every other `par` command uses feed the gateway (issue: it wanted its own)."""
    monkeypatch.setenv("PAR_REGISTRY_URL", registry.url)
    monkeypatch.setenv("PAR_API_KEY", registry.admin_key)
    with serve(build_authz_app(GatewaySettings())) as gateway:
        assert httpx.get(f"{gateway}/readyz").json() == {"ready": True}


def test_without_a_key_readyz_says_which_variable(
    registry: RunningRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("PAR_API_KEY", "PAR_ADMIN_KEY", "PAR_GATEWAY_REGISTRY_KEY"):
        monkeypatch.delenv(name, raising=False)
    with serve(build_authz_app(GatewaySettings(registry_url=registry.url))) as gateway:
        ready = httpx.get(f"{gateway}/readyz")
        assert ready.status_code == 503
        assert ready.json()["reason"].endswith("set PAR_API_KEY")
