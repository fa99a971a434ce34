"""The CloudEvents Distributed Tracing extension through the broker, as Knative's broker carries it:
kept by the ingress (binary, structured, or taken from the request's W3C `traceparent`), stored
in the Kafka record, continued on each delivery's HTTP request under a new span id, and onto
replies. Each test runs on the embedded broker and on a real Kafka."""

from __future__ import annotations

import json

import pytest

from tests.integration.eventing.conftest import broker, ce_headers, topic_records, trigger

pytestmark = pytest.mark.integration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def _continues(traceparent: str, parent: str = PARENT) -> bool:
    version, trace_id, span_id, flags = traceparent.split("-")
    _, _, parent_span, parent_flags = parent.split("-")
    return (version, trace_id, flags) == ("00", TRACE_ID, parent_flags) and span_id != parent_span


def test_the_extension_is_kept_and_continued_on_delivery(eventing, subscriber, kafka_bootstrap):
    sub = subscriber()
    ev = eventing([broker("traced"), trigger("traced-all", "traced", sub.url)])
    assert ev.post("traced", "bin-1", traceparent=PARENT, tracestate="vendor=abc").status_code == 202
    structured = {"specversion": "1.0", "id": "str-1", "type": "demo.s", "source": "/s",
                  "traceparent": PARENT, "data": {"k": "v"}}
    assert ev.client.post("/default/traced", content=json.dumps(structured),
                          headers={"content-type": "application/cloudevents+json"}).status_code == 202
    # no extension, only the HTTP request's trace: the ingress stores that as the extension
    http_only = ev.client.post("/default/traced", content=b"{}",
                               headers={**ce_headers("http-1"), "traceparent": PARENT, "tracestate": "v=1"})
    assert http_only.status_code == 202
    untraced = ev.post("traced", "none-1")
    assert untraced.status_code == 202

    got = {r.id: r for r in sub.recorder.wait_for(4)}
    for event_id in ("bin-1", "str-1", "http-1"):
        headers = got[event_id].headers
        assert headers["ce-traceparent"] == PARENT, event_id  # the producer's context, unchanged
        assert _continues(headers["traceparent"]), event_id  # the delivery's own span
    assert got["bin-1"].headers["ce-tracestate"] == got["bin-1"].headers["tracestate"] == "vendor=abc"
    assert got["http-1"].headers["ce-tracestate"] == "v=1"
    assert "traceparent" not in got["none-1"].headers and "ce-traceparent" not in got["none-1"].headers

    records = {dict(r.headers)["ce_id"].decode(): dict(r.headers)
               for r in topic_records(kafka_bootstrap, "knative-broker-default-traced")}
    assert {records[i]["ce_traceparent"] for i in ("bin-1", "str-1", "http-1")} == {PARENT.encode()}


def test_replies_continue_the_trace(eventing, subscriber):
    def answer(received, attempt):
        headers = {"ce-specversion": "1.0", "ce-id": "reply-" + received.id, "ce-type": "demo.reply",
                   "ce-source": "/replier", "content-type": "application/json"}
        if received.id == "ask-own":  # a subscriber that answers with its own span
            headers["traceparent"] = f"00-{TRACE_ID}-1111111111111111-01"
        return 200, headers, b"{}"

    replier, sink = subscriber(respond=answer), subscriber()
    ev = eventing([
        broker("traced-replies"),
        trigger("traced-ask", "traced-replies", replier.url, filter={"attributes": {"type": "demo.ask"}}),
        trigger("traced-sink", "traced-replies", sink.url, filter={"attributes": {"type": "demo.reply"}}),
    ])
    assert ev.post("traced-replies", "ask-plain", type_="demo.ask", traceparent=PARENT).status_code == 202
    assert ev.post("traced-replies", "ask-own", type_="demo.ask", traceparent=PARENT).status_code == 202
    got = {r.id: r for r in sink.recorder.wait_for(2)}
    assert got["reply-ask-plain"].headers["ce-traceparent"] == PARENT
    assert got["reply-ask-own"].headers["ce-traceparent"] == f"00-{TRACE_ID}-1111111111111111-01"
    assert _continues(got["reply-ask-plain"].headers["traceparent"])


@pytest.fixture
def spans():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from runtime import telemetry

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.use_provider(provider)
    yield exporter
    telemetry.use_provider(None)


def test_spans_for_ingress_delivery_attempts_retries_and_dead_letters(eventing, subscriber, spans):
    import time

    ok = subscriber(respond=lambda r, attempt: (500 if attempt == 1 else 200, {}, b""))
    failing, dls = subscriber(respond=lambda r, attempt: (400, {}, b"no")), subscriber()
    ev = eventing([
        broker("spans"),
        trigger("spans-ok", "spans", ok.url, delivery={"retry": 2, "backoffDelay": "PT0.05S"}),
        trigger("spans-dead", "spans", failing.url, delivery={"deadLetterSink": {"uri": dls.url}}),
    ])
    assert ev.post("spans", "sp-1", traceparent=PARENT).status_code == 202
    got = ok.recorder.wait_for(2)
    dls.recorder.wait_for(1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len([s for s in spans.get_finished_spans()
                                               if s.kind.name == "CONSUMER"]) < 2:
        time.sleep(0.05)
    finished = spans.get_finished_spans()
    assert all(format(s.context.trace_id, "032x") == TRACE_ID for s in finished)
    (send,) = [s for s in finished if s.kind.name == "PRODUCER"]
    assert send.name == "send knative-broker-default-spans"
    assert send.attributes["cloudevents.event_id"] == "sp-1"
    assert send.attributes["messaging.destination.name"] == "knative-broker-default-spans"
    process = {s.attributes["par.trigger"]: s for s in finished if s.kind.name == "CONSUMER"}
    delivered, dead = process["default/spans-ok"], process["default/spans-dead"]
    assert delivered.name == "process knative-broker-default-spans"
    assert format(delivered.parent.span_id, "016x") == "00f067aa0ba902b7"  # the event's context
    assert [e.name for e in delivered.events] == ["retry"]
    assert [e.name for e in dead.events] == ["dead-lettered"] and dead.status.status_code.name == "ERROR"
    under = delivered.context.span_id
    attempts = sorted((s for s in finished if s.kind.name == "CLIENT" and s.parent.span_id == under),
                      key=lambda s: s.start_time)
    assert [s.attributes["http.response.status_code"] for s in attempts] == [500, 200]
    # each attempt's span id is the traceparent its request carried
    assert [r.headers["traceparent"].split("-")[2] for r in got] == [
        format(s.context.span_id, "016x") for s in attempts]
