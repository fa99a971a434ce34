"""Proxy mode on real uvicorn servers: policy first, then a streamed exchange with the agent."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest

from gateway.feed import StaticPolicy
from gateway.policy import Policy
from gateway.proxy import build_proxy_app
from gateway.resolver import AgentUnavailable, StaticResolver
from gateway.settings import GatewaySettings
from tests.support.gateway import HOST, make_key, serve, snapshot
from tests.support.net import free_port

pytestmark = pytest.mark.integration

KEY, RECORD = make_key(tenant="acme")
AUTH = {"Host": HOST, "Authorization": f"Bearer {KEY}"}


class Upstream:
    """An agent-like ASGI app whose endpoints expose what the proxy did."""

    def __init__(self) -> None:
        self.first_chunk_seen = threading.Event()
        self.release = threading.Event()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/echo":
            body = json.dumps(
                {
                    "path": path,
                    "raw_path": scope["raw_path"].decode(),
                    "query": scope["query_string"].decode(),
                    "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
                }
            ).encode()
            extra = [
                (b"keep-alive", b"timeout=5"),
                (b"x-agent", b"yes"),
                (b"set-cookie", b"session=secret; Path=/"),
            ]
            await self._reply(send, 200, body, extra)
        elif path == "/upload":
            digest, size = hashlib.sha256(), 0
            while True:
                message = await receive()
                chunk = message.get("body", b"")
                if chunk:
                    self.first_chunk_seen.set()
                digest.update(chunk)
                size += len(chunk)
                if not message.get("more_body"):
                    break
            await self._reply(send, 200, json.dumps({"bytes": size, "sha256": digest.hexdigest()}).encode())
        elif path == "/stream":
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
            )
            await send({"type": "http.response.body", "body": b"first\n", "more_body": True})
            released = await asyncio.to_thread(self.release.wait, 10)
            await send({"type": "http.response.body", "body": b"released\n" if released else b"timeout\n"})
        elif path == "/slow":
            await asyncio.sleep(3)
            await self._reply(send, 200, b"late")
        else:
            await self._reply(send, 404, b"{}")

    @staticmethod
    async def _reply(send, status: int, body: bytes, headers=()) -> None:
        start = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ]
        await send({"type": "http.response.start", "status": status, "headers": start})
        await send({"type": "http.response.body", "body": body})


class CountingResolver(StaticResolver):
    """A StaticResolver that records how many exchanges hold an upstream (the seam's contract)."""

    def __init__(self, upstreams) -> None:
        super().__init__(upstreams)
        self.in_flight = 0

    @asynccontextmanager
    async def acquire(self, namespace: str, agent: str, tag: str | None = None) -> AsyncIterator[str]:
        if agent == "broken":
            raise AgentUnavailable("agent 'broken' failed to start: exit code 3")
        async with super().acquire(namespace, agent, tag) as url:
            self.in_flight += 1
            try:
                yield url
            finally:
                self.in_flight -= 1


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[Upstream, str]]:
    app = Upstream()
    with serve(app) as url:
        yield app, url


@pytest.fixture(scope="module")
def resolver(upstream) -> CountingResolver:
    _, url = upstream
    dead = f"http://127.0.0.1:{free_port()}"
    return CountingResolver(
        {("default", "demo-agent"): url, ("default", "down"): dead, ("default", "broken"): url}
    )


@pytest.fixture(scope="module")
def proxy(resolver) -> Iterator[str]:
    settings = GatewaySettings(mode="proxy", max_body_bytes=100_000, upstream_timeout=0.5)
    app = build_proxy_app(settings, StaticPolicy(Policy.from_snapshot(snapshot([RECORD]))), resolver)
    with serve(app, **settings.uvicorn_options()) as url:
        yield url


def test_forwards_with_forwarding_headers_and_without_hop_by_hop(proxy: str) -> None:
    headers = {
        **AUTH,
        "X-Forwarded-For": "203.0.113.9",
        "X-Par-Tenant": "spoofed",
        "X-Request-Id": "req-123",
        "Connection": "keep-alive, X-Drop-Me",
        "X-Drop-Me": "1",
        "TE": "trailers",
        "Proxy-Authorization": "Basic c2VjcmV0",
    }
    response = httpx.get(f"{proxy}/echo?a=1&b=%2F", headers=headers)
    assert response.status_code == 200
    seen = json.loads(response.content)
    upstream_headers = dict(seen["headers"])
    assert seen["query"] == "a=1&b=%2F"
    assert upstream_headers["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert upstream_headers["x-forwarded-proto"] == "http"
    assert upstream_headers["x-forwarded-host"] == HOST
    assert upstream_headers["x-request-id"] == "req-123"
    assert upstream_headers["x-par-tenant"] == "acme"
    assert upstream_headers["x-par-key-id"] == RECORD["id"]
    for dropped in ("x-drop-me", "te", "proxy-authorization", "authorization"):
        assert dropped not in upstream_headers, dropped
    assert upstream_headers["host"].startswith("127.0.0.1:")
    assert response.headers["x-agent"] == "yes"
    assert "keep-alive" not in response.headers
    assert response.headers["x-request-id"] == "req-123"


def test_cookies_are_passed_through_never_kept_for_other_callers(proxy: str) -> None:
    first = httpx.get(f"{proxy}/echo", headers=AUTH)
    assert first.headers["set-cookie"] == "session=secret; Path=/"
    second = httpx.get(f"{proxy}/echo", headers=AUTH)
    assert "cookie" not in dict(second.json()["headers"])
    with_cookie = httpx.get(f"{proxy}/echo", headers={**AUTH, "Cookie": "mine=1"})
    assert dict(with_cookie.json()["headers"])["cookie"] == "mine=1"


def test_a_request_id_is_made_when_none_or_a_bad_one_is_given(proxy: str) -> None:
    for given in ({}, {"X-Request-Id": "bad id\twith spaces"}):
        response = httpx.get(f"{proxy}/echo", headers={**AUTH, **given})
        made = response.headers["x-request-id"]
        assert len(made) == 32 and made == dict(response.json()["headers"])["x-request-id"]


def test_denials_never_reach_the_agent(proxy: str) -> None:
    response = httpx.get(f"{proxy}/echo", headers={"Host": HOST})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="par"'
    assert response.headers["x-request-id"]
    assert httpx.get(f"{proxy}/echo", headers={**AUTH, "Host": "evil.example.com"}).status_code == 404


def test_request_body_is_streamed_to_the_agent(proxy: str, upstream) -> None:
    app, _ = upstream
    app.first_chunk_seen.clear()

    async def body() -> AsyncIterator[bytes]:
        yield b"a" * 1000
        # The agent sees the first chunk while the client still holds the rest back.
        seen = await asyncio.to_thread(app.first_chunk_seen.wait, 10)
        yield b"b" * 1000 if seen else b"not streamed"

    async def run() -> httpx.Response:
        async with httpx.AsyncClient() as client:
            return await client.post(f"{proxy}/upload", headers=AUTH, content=body())

    result = asyncio.run(run()).json()
    assert result == {"bytes": 2000, "sha256": hashlib.sha256(b"a" * 1000 + b"b" * 1000).hexdigest()}


def test_response_body_is_streamed_and_the_upstream_held_until_the_end(
    proxy: str, upstream, resolver
) -> None:
    app, _ = upstream
    app.release.clear()
    with httpx.stream("GET", f"{proxy}/stream", headers=AUTH, timeout=15) as response:
        chunks = response.iter_raw()
        assert next(chunks) == b"first\n"  # arrived before the agent finished
        assert resolver.in_flight == 1
        app.release.set()
        assert b"".join(chunks) == b"released\n"
    deadline = time.monotonic() + 5  # released right after the last byte went out
    while resolver.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert resolver.in_flight == 0


def test_body_cap_is_413_by_length_and_while_streaming(proxy: str) -> None:
    too_big = httpx.post(f"{proxy}/upload", headers=AUTH, content=b"x" * 100_001)
    assert too_big.status_code == 413

    def chunked() -> Iterator[bytes]:
        for _ in range(20):
            yield b"y" * 10_000

    streamed = httpx.post(f"{proxy}/upload", headers=AUTH, content=chunked())
    assert streamed.status_code == 413
    assert httpx.post(f"{proxy}/upload", headers=AUTH, content=b"x" * 100_000).json()["bytes"] == 100_000


@pytest.mark.parametrize(
    ("agent", "path", "status", "reason"),
    [
        ("nobody", "/echo", 404, "unknown_agent"),
        ("down", "/echo", 502, "upstream_unreachable"),
        ("broken", "/echo", 502, "agent_unavailable"),
        ("demo-agent", "/slow", 504, "upstream_timeout"),
    ],
)
def test_upstream_failures(proxy: str, agent: str, path: str, status: int, reason: str) -> None:
    host = f"{agent}.default.127.0.0.1.sslip.io"
    response = httpx.get(f"{proxy}{path}", headers={**AUTH, "Host": host}, timeout=10)
    assert response.status_code == status
    assert response.json()["code"] == reason
    if agent == "broken":
        assert "exit code 3" in response.json()["detail"]


def test_websocket_handshakes_are_refused(proxy: str) -> None:
    port = int(proxy.rsplit(":", 1)[1])
    handshake = (
        f"GET / HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {KEY}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(handshake.encode())
        assert sock.recv(64).startswith(b"HTTP/1.1 403")


def test_metrics_include_proxied_latency(proxy: str) -> None:
    httpx.get(f"{proxy}/echo", headers=AUTH)
    text = httpx.get(f"{proxy}/metrics").text
    assert 'par_gateway_proxy_seconds_count{status="2xx"}' in text
    assert 'par_gateway_decisions_total{outcome="allow",reason="key"}' in text


PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_the_callers_trace_is_continued_under_the_gateways_span(proxy: str) -> None:
    """W3C Trace Context: same trace-id and sampling decision, a new parent-id (this hop), and
    tracestate and baggage passed on as they came."""
    traced = {**AUTH, "traceparent": PARENT, "tracestate": "vendor=abc", "baggage": "user=42"}
    seen = dict(httpx.get(f"{proxy}/echo", headers=traced).json()["headers"])
    version, trace_id, span_id, flags = seen["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", "4bf92f3577b34da6a3ce929d0e0e4736", "01")
    assert span_id not in ("00f067aa0ba902b7", "0" * 16) and len(span_id) == 16
    assert seen["tracestate"] == "vendor=abc" and seen["baggage"] == "user=42"
    unsampled = dict(httpx.get(f"{proxy}/echo", headers={**AUTH, "traceparent": PARENT[:-2] + "00"})
                     .json()["headers"])
    assert unsampled["traceparent"].endswith("-00")


@pytest.mark.parametrize(
    "given",
    [
        {},
        {"traceparent": "00-" + "0" * 32 + "-00f067aa0ba902b7-01", "tracestate": "vendor=abc"},
        {"traceparent": "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
        {"traceparent": "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"},
    ],
)
def test_a_trace_is_started_without_a_valid_traceparent(proxy: str, given: dict[str, str]) -> None:
    seen = dict(httpx.get(f"{proxy}/echo", headers={**AUTH, **given}).json()["headers"])
    version, trace_id, _, flags = seen["traceparent"].split("-")
    assert version == "00" and len(trace_id) == 32 and trace_id != "0" * 32 and trace_id.islower()
    assert trace_id != "4bf92f3577b34da6a3ce929d0e0e4736" and flags == "01"  # sampled: ratio 1.0
    assert "tracestate" not in seen  # an invalid traceparent's tracestate is dropped


def test_a_denial_names_the_trace(proxy: str) -> None:
    response = httpx.get(f"{proxy}/echo", headers={"Host": HOST, "traceparent": PARENT})
    assert response.status_code == 401
    assert response.headers["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
