"""Least privilege (issue 17): a key of role "gateway" reads /v1/gateway/snapshot and nothing else;
`par up` gives its gateway such a key, never the admin key; an admin key still reads the feed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gateway.apikeys import generate_key
from registry.app import create_app
from registry.settings import RegistrySettings

pytestmark = pytest.mark.integration
GATEWAY_KEY = generate_key()[1]


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, str]]:
    for name in ("PAR_ADMIN_KEY", "PAR_GATEWAY_KEY", "DATABASE_URL", "PAR_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    admin: list[str] = []
    app = create_app(
        RegistrySettings(data_dir=tmp_path, gateway_key=GATEWAY_KEY), announce=lambda k, _: admin.append(k)
    )
    with TestClient(app) as client:
        yield client, admin[0]


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_gateway_key_reads_the_snapshot_and_nothing_else(registry: tuple[TestClient, str]) -> None:
    client, admin = registry
    feed = client.get("/v1/gateway/snapshot", headers=_as(GATEWAY_KEY))
    assert feed.status_code == 200, feed.text
    assert client.get("/v1/gateway/snapshot", headers=_as(admin)).status_code == 200  # admin still may
    # ... and it is not in the snapshot itself: the gateway refuses it for any agent
    assert GATEWAY_KEY.split("_")[1] not in {k["id"] for k in feed.json()["keys"]}
    for method, path, body in [
        ("GET", "/v1/agents", None),
        ("GET", "/v1/keys", None),
        ("POST", "/v1/keys", {"tenant": "evil", "admin": True}),
        ("POST", "/v1/namespaces/default/agents", {"name": "evil"}),
        ("PUT", "/v1/namespaces/default/agents/demo-agent/deployment", {"version": "0.1.0"}),
        ("GET", "/v1/namespaces/default/triggers", None),
        ("GET", "/v1/namespaces/default/dead-letters", None),
    ]:
        refused = client.request(method, path, json=body, headers=_as(GATEWAY_KEY))
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json()["code"] == "admin_required"
    signed_in = client.post("/console/login", data={"key": GATEWAY_KEY}, follow_redirects=False)
    assert signed_in.status_code == 401 and "par_console" not in signed_in.headers.get("set-cookie", "")


def test_keys_create_makes_one_and_an_ordinary_key_reads_no_feed(registry: tuple[TestClient, str]) -> None:
    client, admin = registry
    made = client.post("/v1/keys", json={"role": "gateway", "tenant": "gw"}, headers=_as(admin))
    assert made.status_code == 201, made.text
    assert made.json()["role"] == "gateway" and made.json()["grants"] == [] and not made.json()["admin"]
    assert client.get("/v1/gateway/snapshot", headers=_as(made.json()["key"])).status_code == 200
    ordinary = client.post("/v1/keys", json={"tenant": "acme"}, headers=_as(admin)).json()
    assert ordinary["role"] == "agents"
    assert client.get("/v1/gateway/snapshot", headers=_as(ordinary["key"])).status_code == 403
    both = client.post("/v1/keys", json={"role": "gateway", "admin": True}, headers=_as(admin))
    assert both.status_code == 422


def test_par_keys_create_gateway(monkeypatch: pytest.MonkeyPatch, registry: tuple[TestClient, str]) -> None:
    from typer.testing import CliRunner

    from registry.commands import keys

    client, admin = registry
    sent: list[dict] = []

    class FakeClient:
        def __enter__(self) -> FakeClient:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def json(self, method: str, path: str, json: dict) -> dict:
            sent.append(json)
            response = client.request(method, path, json=json, headers=_as(admin))
            assert response.status_code == 201, response.text
            return response.json()

    monkeypatch.setattr(keys, "client", FakeClient)
    result = CliRunner().invoke(keys.app, ["create", "--gateway"])
    assert result.exit_code == 0, result.output
    assert sent[0]["role"] == "gateway" and "reads /v1/gateway/snapshot and nothing else" in result.output
    refused = CliRunner().invoke(keys.app, ["create", "--gateway", "--admin"])
    assert refused.exit_code == 2


def test_the_admin_key_is_not_installed_as_a_gateway_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import ValidationError

    for name in ("PAR_ADMIN_KEY", "PAR_GATEWAY_KEY", "DATABASE_URL", "PAR_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    admin = generate_key()[1]
    with pytest.raises(ValidationError, match="is the admin key"):
        RegistrySettings(data_dir=tmp_path, admin_key=admin, gateway_key=admin)
    with pytest.raises(ValidationError, match="not a PAR API key"):
        RegistrySettings(data_dir=tmp_path, gateway_key="secret")
    generated: list[str] = []  # an admin key the registry made itself, then named as the gateway's
    first = create_app(RegistrySettings(data_dir=tmp_path), announce=lambda k, _: generated.append(k))
    with TestClient(first):
        pass
    app = create_app(RegistrySettings(data_dir=tmp_path, gateway_key=generated[0]))
    with pytest.raises(ValueError, match="PAR_GATEWAY_KEY is an admin key"), TestClient(app):
        pass
