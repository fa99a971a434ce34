"""Every gateway decision through a real Envoy, programmed as Kourier and as Istio program it from
the values in knative/gateway/{kourier,istio}, in front of a real agent runtime."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.support.envoy_ingress import kourier_gateway_env
from tests.support.envoy_stack import AGENT_HOST, INGRESSES, MAPPED_HOST, Stack, envoy_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=list(INGRESSES))
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with envoy_stack(request.param, tmp_path_factory.mktemp(f"envoy-{request.param}")) as running:
        yield running


def max_body() -> int:
    return int(kourier_gateway_env()["PAR_GATEWAY_MAX_BODY_BYTES"])


def test_a_key_reaches_the_agent_with_the_gateways_tenant_only(stack: Stack) -> None:
    response = stack.get("/echo/hello", stack.keys.ok, headers={"x-par-tenant": "spoofed"})
    assert response.status_code == 200, response.text
    seen = response.json()
    assert seen["path"] == "/echo/hello"
    if stack.flavour == "istio":
        # headersToUpstreamOnAllow: the gateway's value replaces whatever the client sent
        assert seen["headers"]["x-par-tenant"] == "acme"
        assert seen["headers"]["x-par-key-id"]
    else:
        # Kourier forwards no ext_authz response header upstream; a client's own must not pass
        assert "x-par-tenant" not in seen["headers"]
        assert "x-par-key-id" not in seen["headers"]


def test_no_key_is_401_with_the_challenge_at_the_client(stack: Stack) -> None:
    before = stack.agent.seen()["requests"]
    missing = stack.get("/echo/x")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="par"'
    assert missing.json()["title"] == "Unauthorized"
    bad = stack.get("/echo/x", "par_000000000000_not-a-real-key")
    assert bad.status_code == 401
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]
    assert stack.agent.seen()["requests"] == before


def test_a_key_for_other_agents_is_403(stack: Stack) -> None:
    response = stack.get("/echo/x", stack.keys.elsewhere)
    assert response.status_code == 403
    assert response.json()["title"] == "Forbidden"
    assert stack.keys.elsewhere not in str(stack.agent.seen()["by_authorization"])


def test_over_the_rate_limit_is_429_with_retry_after_and_ratelimit_headers(stack: Stack) -> None:
    statuses = [stack.get("/echo/x", stack.keys.limited) for _ in range(3)]
    assert [r.status_code for r in statuses[:2]] == [200, 200]
    if stack.flavour == "istio":
        assert statuses[0].headers["ratelimit-remaining"] == "1"  # headersToDownstreamOnAllow
    limited = statuses[2]
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["ratelimit-limit"] == "2"
    assert limited.headers["ratelimit-remaining"] == "0"
    assert int(limited.headers["ratelimit-reset"]) >= 1
    assert limited.json()["code"] == "rate_limited"


def test_a_body_over_the_limit_is_413_declared_or_chunked(stack: Stack) -> None:
    limit = max_body()
    headers = {"Host": AGENT_HOST, "Authorization": f"Bearer {stack.keys.ok}"}
    at_limit = httpx.post(f"{stack.envoy.url}/echo/up", headers=headers, content=b"a" * limit, timeout=30)
    assert at_limit.status_code == 200 and at_limit.json()["body_bytes"] == limit
    before = stack.agent.seen()["requests"]
    over = httpx.post(f"{stack.envoy.url}/echo/up", headers=headers, content=b"a" * (limit + 1), timeout=30)
    assert over.status_code == 413, over.text

    def chunks() -> Iterator[bytes]:
        for _ in range(limit // (1 << 20) + 1):
            yield b"b" * (1 << 20)

    chunked = httpx.post(f"{stack.envoy.url}/echo/up", headers=headers, content=chunks(), timeout=30)
    assert chunked.status_code == 413, chunked.text
    assert stack.agent.seen()["requests"] == before


def raw_get(url: str, target: str, key: str, host: str = AGENT_HOST) -> bytes:
    """A request line sent as written (HTTP clients normalise dot segments away)."""
    port = int(url.rsplit(":", 1)[1])
    head = f"GET {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
    head += "Connection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode())
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


@pytest.mark.parametrize("target", ["/echo/../echo-seen", "/echo/%2e%2e/echo-seen", "/echo/.%2E/echo-seen"])
def test_dot_segments_never_reach_the_agent(stack: Stack, target: str) -> None:
    before = stack.agent.seen()["requests"]
    reply = raw_get(stack.envoy.url, target, stack.keys.ok)
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
    assert stack.agent.seen()["requests"] == before


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_the_gateways_own_routes_never_authorize_a_request(stack: Stack, path: str) -> None:
    """A host Envoy routes to an agent but the gateway cannot name (a DomainMapping) must be denied,
    even on a path that is also one of the gateway's own routes."""
    response = stack.get(path, host=MAPPED_HOST)
    assert response.status_code != 200, f"{path} on {MAPPED_HOST} reached the agent without a key"
