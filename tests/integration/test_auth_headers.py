"""Every door holds (issue 17): hostile credentials at every authenticated endpoint of every
component — non-ASCII, empty, over-long and repeated `Authorization` (and the console's CSRF
header and session cookie) — answer 401/403, never 5xx. And the console's sign-in: `Origin: null`
refused, the session cookie Secure whenever the browser's request was HTTPS (a TLS-terminating
proxy's X-Forwarded-Proto believed from trusted addresses only)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from eventing import admin as eventing_admin
from eventing.dlq_api import standalone_app
from gateway.authz import build_authz_app
from gateway.feed import StaticPolicy
from gateway.policy import Policy
from gateway.proxy import build_proxy_app
from gateway.resolver import StaticResolver
from gateway.settings import GatewaySettings
from registry.app import create_app
from registry.settings import RegistrySettings
from tests.support.gateway import HOST, agent, make_key, snapshot

pytestmark = pytest.mark.integration
TOKEN = "s3cret-token"


def hostile(valid: str) -> list[Any]:
    """Header lists to send (each a list of (name, value) pairs): never a valid credential alone."""
    return [
        pytest.param([("authorization", b"Bearer \xff\xfe\xe9")], id="latin-1"),
        pytest.param([("authorization", "Bearer ключ".encode())], id="utf-8"),
        pytest.param([("authorization", f"Bearer {valid}é".encode())], id="valid-plus-non-ascii"),
        pytest.param([("authorization", b"")], id="empty"),
        pytest.param([("authorization", b"Bearer ")], id="empty-token"),
        pytest.param([("authorization", b"Bearer " + b"x" * 8000)], id="over-long"),
        pytest.param([("authorization", f"Bearer {valid}".encode()), ("authorization", b"Bearer wrong")],
                     id="duplicated-valid-first"),
        pytest.param([("authorization", b"Bearer wrong"), ("authorization", f"Bearer {valid}".encode())],
                     id="duplicated-valid-last"),
        pytest.param([("authorization", f"Bearer {valid}".encode())] * 2, id="duplicated-valid-twice"),
    ]


def _ok(response: httpx.Response) -> None:
    assert response.status_code in (401, 403), (response.status_code, response.text[:300])


# --- registry API -------------------------------------------------------------------------------

ADMIN_KEY = make_key(admin=True)[0]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data = tmp_path_factory.mktemp("registry")
    app = create_app(RegistrySettings(data_dir=data, admin_key=ADMIN_KEY, database_url=None))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _operations(app: FastAPI, prefix: str) -> list[tuple[str, str]]:
    """Every (method, path) of the app's OpenAPI under `prefix`, path parameters filled in."""
    found = []
    for path, operations in app.openapi()["paths"].items():
        if path.startswith(prefix):
            found += [(method.upper(), re.sub(r"\{[^}]+\}", "x", path)) for method in operations]
    return found


def _registry_routes() -> list[tuple[str, str]]:
    app = create_app(RegistrySettings(data_dir=Path("/nonexistent")))
    found = [(m, p) for m, p in _operations(app, "/v1/") if not p.startswith("/v1/artifacts")]
    assert len(found) > 20
    return found


@pytest.mark.parametrize("headers", hostile(ADMIN_KEY))
def test_registry_api(registry: TestClient, headers: list[tuple[str, bytes]]) -> None:
    for method, path in _registry_routes():
        _ok(registry.request(method, path, headers=headers))


# --- gateway: ext_authz and proxy -----------------------------------------------------------------

GW_KEY, GW_RECORD = make_key(tenant="acme", grants=["default/*"])


def _policy() -> StaticPolicy:
    return StaticPolicy(Policy.from_snapshot(snapshot([GW_RECORD], [agent()])))


@pytest.mark.parametrize("mode", ["authz", "proxy"])
@pytest.mark.parametrize("headers", hostile(GW_KEY))
def test_gateway(mode: str, headers: list[tuple[str, bytes]]) -> None:
    settings = GatewaySettings(mode=mode)
    if mode == "authz":
        app: Any = build_authz_app(settings, policy=_policy())
    else:
        resolver = StaticResolver({("default", "demo-agent"): "http://127.0.0.1:9"})
        app = build_proxy_app(settings, policy=_policy(), resolver=resolver)
    with TestClient(app, raise_server_exceptions=False) as client:
        for method in ("GET", "POST"):
            _ok(client.request(method, "/invoke", headers=[("host", HOST.encode()), *headers]))


# --- eventing: the admin API and the dead-letter store ------------------------------------------

@pytest.mark.parametrize("headers", hostile(TOKEN))
def test_eventing_admin_api(headers: list[tuple[str, bytes]]) -> None:
    app = FastAPI()
    app.include_router(eventing_admin.router)
    app.state.eventing = SimpleNamespace(settings=SimpleNamespace(admin_token=TOKEN))
    operations = _operations(app, "/apis/")
    assert len(operations) >= 5
    with TestClient(app, raise_server_exceptions=False) as client:
        for method, path in operations:
            _ok(client.request(method, path, headers=headers, content=b"{}"))


@pytest.mark.parametrize("headers", hostile(TOKEN))
def test_dead_letter_store(headers: list[tuple[str, bytes]], tmp_path: Path) -> None:
    app = standalone_app(str(tmp_path / "dl.sqlite3"), TOKEN, 5.0)
    with TestClient(app, raise_server_exceptions=False) as client:
        checked = 0
        for method, path in _operations(app, "/dead-letters"):
            if (method, path) == ("POST", "/dead-letters"):
                continue  # the sink Knative posts dead letters to: no token, as Knative's sinks
            _ok(client.request(method, path, headers=headers))
            checked += 1
        assert checked >= 5


# --- console: sign-in, CSRF, session cookie, Origin, Secure ----------------------------------------

def _console(registry: TestClient, **client: Any) -> TestClient:
    return TestClient(registry.app, raise_server_exceptions=False, follow_redirects=False, **client)


@pytest.mark.parametrize(
    "key", ["ключ", "\xff\xfe", "", " ", "par_" + "x" * 8000, f"{ADMIN_KEY}é"], ids=str.__len__
)
def test_console_sign_in_with_hostile_keys(registry: TestClient, key: str) -> None:
    with _console(registry) as client:
        _ok(client.post("/console/login", data={"key": key}))


def _signed_in(client: TestClient) -> str:
    assert client.post("/console/login", data={"key": ADMIN_KEY}).status_code == 303
    page = client.get("/console/keys").text
    token = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert token is not None
    return token[1]


@pytest.mark.parametrize("headers", [
    pytest.param([("x-csrf-token", b"\xff\xfe\xe9")], id="latin-1"),
    pytest.param([("x-csrf-token", "ключ".encode())], id="utf-8"),
    pytest.param([("x-csrf-token", b"")], id="empty"),
    pytest.param([("x-csrf-token", b"x" * 8000)], id="over-long"),
    pytest.param("duplicated", id="duplicated-valid"),
    pytest.param("cookie", id="non-ascii-cookie"),
])
def test_console_csrf_and_session(registry: TestClient, headers: Any) -> None:
    with _console(registry) as client:
        token = _signed_in(client)
        if headers == "duplicated":
            headers = [("x-csrf-token", token.encode())] * 2
        elif headers == "cookie":
            client.cookies.clear()
            headers = [("x-csrf-token", token.encode()), ("cookie", "par_console=\xe9\xff".encode("latin-1"))]
        for method, path in [("POST", "/console/logout"), ("POST", "/console/keys"),
                             ("DELETE", "/console/keys/x"), ("POST", "/console/agents/default/x/rollback")]:
            _ok(client.request(method, path, headers=headers, json={"name": "k"}))


def test_console_sign_in_refuses_origin_null(registry: TestClient) -> None:
    with _console(registry) as client:
        refused = client.post("/console/login", data={"key": ADMIN_KEY}, headers={"Origin": "null"})
        assert refused.status_code == 403 and refused.json()["code"] == "csrf_failed"
        own = client.post("/console/login", data={"key": ADMIN_KEY}, headers={"Origin": "http://testserver"})
        assert own.status_code == 303
        assert client.get("/console/login").headers["referrer-policy"] == "same-origin"  # a real Origin


def _cookie(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    return response.headers["set-cookie"].lower()


def test_console_cookie_is_secure_over_https(registry: TestClient) -> None:
    with _console(registry, base_url="https://console.example") as client:
        cookie = _cookie(client.post("/console/login", data={"key": ADMIN_KEY}))
        assert "; secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    with _console(registry) as client:
        assert "; secure" not in _cookie(client.post("/console/login", data={"key": ADMIN_KEY}))


def test_console_cookie_behind_a_tls_terminating_proxy(tmp_path: Path) -> None:
    """X-Forwarded-Proto: https from a trusted proxy makes the cookie Secure (and the Origin the
    browser sends, https://..., its own); from anyone else it is ignored."""
    settings = RegistrySettings(data_dir=tmp_path, admin_key=ADMIN_KEY, console_trusted_proxies="10.0.0.0/8")
    forwarded = {"X-Forwarded-Proto": "https", "Origin": "https://testserver"}
    with TestClient(create_app(settings), follow_redirects=False, client=("10.1.2.3", 4000)) as client:
        signed_in = client.post("/console/login", data={"key": ADMIN_KEY}, headers=forwarded)
        assert "; secure" in _cookie(signed_in)
        plain = client.post("/console/login", data={"key": ADMIN_KEY}, headers={"X-Forwarded-Proto": "https"})
        assert "; secure" in _cookie(plain)
    with TestClient(create_app(settings), follow_redirects=False, client=("192.0.2.7", 4000)) as client:
        refused = client.post("/console/login", data={"key": ADMIN_KEY}, headers=forwarded)
        assert refused.status_code == 403  # untrusted: the request was http, https://... another origin
        plain = client.post("/console/login", data={"key": ADMIN_KEY}, headers={"X-Forwarded-Proto": "https"})
        assert "; secure" not in _cookie(plain)


def test_a_bad_trusted_proxy_setting_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("PAR_CONSOLE_TRUSTED_PROXIES", "10.0.0.0/8,not-an-address")
    with pytest.raises(ValidationError, match="not-an-address"):
        RegistrySettings()
