"""W3C Trace Context parsing, and the runtime's middleware with and without OpenTelemetry spans."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from runtime import telemetry, tracecontext
from runtime.telemetry import Propagate
from runtime.tracecontext import parse_traceparent

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (PARENT, True),
        (f"00-{TRACE_ID}-00f067aa0ba902b7-00", True),
        (f"01-{TRACE_ID}-00f067aa0ba902b7-01-what-comes-later", True),  # a later version: first fields
        (f"00-{TRACE_ID}-00f067aa0ba902b7-01-extra", False),  # version 00 is exactly 55 characters
        (f"ff-{TRACE_ID}-00f067aa0ba902b7-01", False),
        (f"00-{'0' * 32}-00f067aa0ba902b7-01", False),
        (f"00-{TRACE_ID}-{'0' * 16}-01", False),
        (PARENT.upper(), False),
        (f"00-{TRACE_ID}-00f067aa0ba902b7-0x", False),
        ("", False),
        (None, False),
    ],
)
def test_traceparent_rules(value: str | None, valid: bool) -> None:
    assert (parse_traceparent(value) is not None) is valid


def test_ratio_sampling_is_by_trace_id() -> None:
    assert tracecontext.sample("0" * 16 + "0" * 15 + "1", 0.0001)
    assert not tracecontext.sample("0" * 16 + "f" * 16, 0.5)
    started = [tracecontext.continue_or_start(None, 0.0).sampled for _ in range(20)]
    assert not any(started)


async def _app(scope, receive, send) -> None:
    context = tracecontext.current()
    body = (context.traceparent if context else "none").encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"traceparent", b"bogus")]})
    await send({"type": "http.response.body", "body": body})


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://runtime")


async def test_without_an_exporter_the_context_is_still_carried() -> None:
    telemetry.use_provider(None)
    app = Propagate(_app)
    assert app.tracer is None  # no OTEL_EXPORTER_OTLP_* endpoint here
    async with _client(app) as client:
        response = await client.get("/", headers={"traceparent": PARENT})
    assert response.text == response.headers["traceparent"]
    assert response.text.startswith(f"00-{TRACE_ID}-") and response.text != PARENT


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.use_provider(provider)
    yield exporter
    telemetry.use_provider(None)


async def test_with_an_exporter_the_request_is_a_server_span(spans: InMemorySpanExporter) -> None:
    async with _client(Propagate(_app)) as client:
        response = await client.post("/invoke", headers={"traceparent": PARENT})
    (span,) = spans.get_finished_spans()
    assert span.kind.name == "SERVER" and span.name == "POST"
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert format(span.parent.span_id, "016x") == "00f067aa0ba902b7"
    # the span's id is the one passed on and answered
    assert response.text == response.headers["traceparent"] == f"00-{TRACE_ID}-{span.context.span_id:016x}-01"
    assert span.attributes["http.request.method"] == "POST"
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["url.path"] == "/invoke"
