"""The local gRPC way in passes the call's W3C trace context (metadata) on to the instance's HTTP
route under its own span id, as the gateway does for HTTP."""

from __future__ import annotations

import json

import grpc
import pytest

from gateway.resolver import StaticResolver
from serving import GrpcFront
from tests.support.gateway import serve

pytestmark = pytest.mark.integration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


async def _headers_echo(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    body = json.dumps({k.decode(): v.decode() for k, v in scope["headers"]}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def test_the_trace_in_the_metadata_reaches_the_instance() -> None:
    with serve(_headers_echo) as url:
        front = GrpcFront(StaticResolver({("default", "echo"): url}))
        port = await front.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                ping = channel.unary_unary("/pixell.agent.AgentService/Ping")
                metadata = (("x-par-agent", "echo"), ("traceparent", PARENT), ("tracestate", "v=1"),
                            ("baggage", "u=1"))
                traced = await ping(b"", timeout=10, metadata=metadata)
                plain = await ping(b"", timeout=10, metadata=(("x-par-agent", "echo"),))
        finally:
            await front.stop()
    seen = json.loads(traced)
    _, trace_id, span_id, flags = seen["traceparent"].split("-")
    assert (trace_id, flags) == (TRACE_ID, "01") and span_id != "00f067aa0ba902b7"
    assert (seen["tracestate"], seen["baggage"]) == ("v=1", "u=1")
    assert "traceparent" not in json.loads(plain)  # the instance's runtime starts the trace then
