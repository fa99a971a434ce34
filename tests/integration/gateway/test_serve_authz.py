"""`par gateway serve --mode authz` as a user runs it: a real process on a loopback port."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.gateway import HOST, make_key, run_par, snapshot
from tests.support.net import free_port

pytestmark = pytest.mark.integration

REFRESH = 0.5
DOOMED_KEY, DOOMED = make_key(tenant="acme")


class Gateway:
    def __init__(self, url: str, policy: Path, log: Path) -> None:
        self.url, self.policy, self.log = url, policy, log

    def write_policy(self, data: dict) -> None:
        tmp = self.policy.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.policy)  # atomic, as a config-map update would be

    def log_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, str, dict]]:
    key, record = make_key(tenant="acme")
    tmp_path = tmp_path_factory.mktemp("gateway")
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(snapshot([record, DOOMED])))
    port = free_port()
    env = {"PAR_GATEWAY_REFRESH_INTERVAL": str(REFRESH), "KOURIER_EXTAUTHZ_PATHPREFIX": "/check"}
    log = tmp_path / "gateway.log"
    url = f"http://127.0.0.1:{port}"
    args = ["gateway", "serve", "--mode", "authz", "--port", str(port), "--policy-file", str(policy)]
    with run_par(args, f"{url}/readyz", log, env):
        yield Gateway(url, policy, log), key, record


def test_acceptance_allow_and_deny(gateway) -> None:
    gw, key, record = gateway
    allowed = httpx.get(f"{gw.url}/check/", headers={"Host": HOST, "Authorization": f"Bearer {key}"})
    assert allowed.status_code == 200
    assert allowed.headers["x-par-tenant"] == "acme" and allowed.headers["x-par-key-id"] == record["id"]
    denied = httpx.get(f"{gw.url}/check/", headers={"Host": HOST})
    assert denied.status_code == 401 and denied.headers["www-authenticate"].startswith("Bearer")
    assert denied.json()["title"] == "Unauthorized"
    # structured JSON log lines, one per denial
    time.sleep(0.2)
    lines = gw.log_lines()
    assert any(line["msg"] == "policy loaded" and line["component"] == "gateway" for line in lines)
    denial = next(line for line in lines if line["msg"] == "denied")
    assert denial["status"] == 401 and denial["reason"] == "missing_credentials"
    assert denial["target"] == "default/demo-agent"


def test_revoked_key_stops_working_within_the_refresh_interval(gateway) -> None:
    gw, key, record = gateway
    headers = {"Host": HOST, "Authorization": f"Bearer {DOOMED_KEY}"}
    assert httpx.get(f"{gw.url}/check/x", headers=headers).status_code == 200
    gw.write_policy(snapshot([record, {**DOOMED, "revoked": True}], revision="2"))
    revoked_at = time.monotonic()
    while httpx.get(f"{gw.url}/check/x", headers=headers).status_code == 200:
        assert time.monotonic() - revoked_at < REFRESH + 1.0, "revoked key still admitted"
        time.sleep(0.02)
    response = httpx.get(f"{gw.url}/check/x", headers=headers)
    assert response.status_code == 401 and response.json()["code"] == "revoked_key"
    assert (
        httpx.get(f"{gw.url}/check/x", headers={**headers, "Authorization": f"Bearer {key}"}).status_code
        == 200
    )


def test_oversize_request_head_does_not_crash_the_server(gateway) -> None:
    gw, key, _ = gateway
    port = int(gw.url.rsplit(":", 1)[1])
    head = f"GET /check/ HTTP/1.1\r\nHost: {HOST}\r\nX-Big: {'a' * 200_000}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            sock.sendall(head)
            reply = sock.recv(200)
        except OSError:  # the server may reset the connection mid-send: also a refusal
            reply = b""
    assert not reply.startswith(b"HTTP/1.1 200")
    ok = httpx.get(f"{gw.url}/check/", headers={"Host": HOST, "Authorization": f"Bearer {key}"})
    assert ok.status_code == 200


def test_raw_dot_segments_in_the_request_line_are_refused(gateway) -> None:
    gw, key, _ = gateway
    port = int(gw.url.rsplit(":", 1)[1])
    for target in ("/check/../metrics", "/check/%2e%2e/admin"):
        head = f"GET {target} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {key}\r\n"
        request = head + "Connection: close\r\n\r\n"
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(request.encode())
            reply = sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 400"), reply[:100]
