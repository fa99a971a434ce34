"""runtime.sdk emit/aemit against a real HTTP sink, read back with the CloudEvents SDK."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_binary
from cloudevents.core.formats.json import JSONFormat

from runtime.sdk import EmitError, SinkNotConfigured, aemit, emit
from tests.integration.runtime.conftest import start

pytestmark = pytest.mark.integration


class Sink:
    """A loopback event sink: records requests; `/fail` answers 500, `/slow` waits 2 s."""

    def __init__(self) -> None:
        self.received: list[HTTPMessage] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if self.path == "/slow":
                    time.sleep(2)
                sink.received.append(HTTPMessage(dict(self.headers.items()), body))
                self.send_response(500 if self.path == "/fail" else 202)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def events(self) -> list:
        lowered = [HTTPMessage({k.lower(): v for k, v in m.headers.items()}, m.body) for m in self.received]
        return [from_binary(m, JSONFormat()) for m in lowered]


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink()
    yield server
    server.httpd.shutdown()


def test_emit_posts_a_binary_cloudevent_to_k_sink(sink: Sink, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K_SINK", sink.url)
    monkeypatch.setenv("PAR_AGENT_NAME", "orders")
    response = emit(
        "com.example.order.created", {"id": 42}, subject="o-42", extensions={"partitionkey": "k1"}
    )
    assert response.status_code == 202
    headers = {k.lower(): v for k, v in sink.received[0].headers.items()}
    assert headers["ce-type"] == "com.example.order.created" and headers["content-type"] == "application/json"
    (event,) = sink.events()
    assert event.get_source() == "/agents/orders"
    assert event.get_subject() == "o-42"
    assert event.get_extension("partitionkey") == "k1"
    assert event.get_data() == {"id": 42}
    assert event.get_id() and event.get_time() is not None


async def test_aemit_with_an_explicit_sink_and_source(sink: Sink, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("K_SINK", raising=False)
    await aemit("com.example.ping", "hello", source="/custom", sink=sink.url)
    (event,) = sink.events()
    assert event.get_source() == "/custom" and event.get_data() == "hello"


def test_no_sink_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("K_SINK", raising=False)
    with pytest.raises(SinkNotConfigured, match="K_SINK is not set"):
        emit("com.example.x", {})


async def test_sink_errors_and_timeouts(sink: Sink) -> None:
    with pytest.raises(EmitError, match="answered HTTP 500"):
        emit("com.example.x", {}, sink=f"{sink.url}/fail")
    started = time.monotonic()
    with pytest.raises(EmitError, match="ReadTimeout"):
        await aemit("com.example.x", {}, sink=f"{sink.url}/slow", timeout=0.5)
    assert time.monotonic() - started < 1.8


def test_an_agent_handler_emits_through_the_runtime(sink: Sink, testbed_apkg: Path, tmp_path: Path) -> None:
    server = start([str(testbed_apkg)], tmp_path, K_SINK=sink.url)
    try:
        assert httpx.post(server.url("/invoke"), json={"do": "emit"}).json() == {"sink_status": 202}
    finally:
        server.stop()
    (event,) = sink.events()
    assert event.get_type() == "com.example.testbed.emitted"
    assert event.get_source() == "/agents/testbed-agent"
    assert event.get_data() == {"from": "handler"}


PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_the_request_trace_reaches_the_handler_its_events_and_the_response(
    sink: Sink, testbed_apkg: Path, tmp_path: Path
) -> None:
    """W3C Trace Context without code in the agent: the handler's outbound headers and emitted
    events continue the caller's trace under the runtime's span, which the response names."""
    server = start([str(testbed_apkg)], tmp_path, K_SINK=sink.url)
    traced = {"traceparent": PARENT, "tracestate": "vendor=abc", "baggage": "user=42"}
    try:
        answer = httpx.post(server.url("/invoke"), json={"do": "trace"}, headers=traced)
        emitted = httpx.post(server.url("/invoke"), json={"do": "emit"}, headers=traced)
        untraced = httpx.post(server.url("/invoke"), json={"do": "trace"})
    finally:
        server.stop()
    ours = answer.headers["traceparent"]
    assert ours.startswith(f"00-{TRACE_ID}-") and ours.endswith("-01") and ours != PARENT
    assert answer.json() == {"traceparent": ours, "tracestate": "vendor=abc", "baggage": "user=42"}
    (event,) = sink.events()
    assert event.get_extension("traceparent") == emitted.headers["traceparent"]
    assert event.get_extension("traceparent").startswith(f"00-{TRACE_ID}-")
    assert event.get_extension("tracestate") == "vendor=abc"
    (request,) = sink.received
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["traceparent"] == emitted.headers["traceparent"] and headers["baggage"] == "user=42"
    # no caller trace: the runtime starts one and still answers with it
    assert untraced.json()["traceparent"] == untraced.headers["traceparent"]
    assert untraced.headers["traceparent"].split("-")[1] != TRACE_ID


def test_a2a_and_grpc_calls_carry_the_trace_to_the_handler(testbed_apkg: Path, tmp_path: Path) -> None:
    """A2A JSON-RPC (HTTP headers) and the gRPC AgentService (call metadata) both make the
    caller's trace the action's current one."""
    import grpc

    from runtime.protos import agent_pb2, agent_pb2_grpc
    from tests.support.net import free_port

    grpc_port = free_port()
    server = start([str(testbed_apkg)], tmp_path, A2A_PORT=str(grpc_port))
    try:
        call = {"jsonrpc": "2.0", "id": 1, "method": "trace", "params": {}}
        answer = httpx.post(server.url("/a2a"), json=call, headers={"traceparent": PARENT, "baggage": "u=1"})
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = agent_pb2_grpc.AgentServiceStub(channel)
            result = stub.Invoke(agent_pb2.ActionRequest(action="trace"), timeout=10,
                                 metadata=(("traceparent", PARENT), ("tracestate", "v=1")))
    finally:
        server.stop()
    a2a = answer.json()["result"]
    assert a2a["traceparent"] == answer.headers["traceparent"] and a2a["baggage"] == "u=1"
    assert a2a["traceparent"].startswith(f"00-{TRACE_ID}-") and a2a["traceparent"] != PARENT
    over_grpc = json.loads(result.result)
    assert result.success and over_grpc["tracestate"] == "v=1"
    assert over_grpc["traceparent"].startswith(f"00-{TRACE_ID}-") and over_grpc["traceparent"] != PARENT
