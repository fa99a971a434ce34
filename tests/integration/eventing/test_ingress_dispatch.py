"""Ingress and dispatcher against the real embedded Kafka and real HTTP subscribers on loopback."""

from __future__ import annotations

import base64
import json

import pytest

from eventing.objects import topic_name
from tests.integration.eventing.conftest import broker, ce_headers, topic_records, trigger

pytestmark = pytest.mark.integration


def test_acceptance_binary_event_reaches_filtered_subscriber(eventing, subscriber, kafka_bootstrap):
    sub = subscriber()
    ev = eventing([broker("accept"), trigger("accept-hello", "accept", sub.url,
                                              filter={"attributes": {"type": "demo.hello"}})])
    other = ev.post("accept", "other-1", type_="demo.other")
    response = ev.post("accept", "hello-1", data=b'{"n": 1}', partitionkey="order-7")
    assert (other.status_code, response.status_code) == (202, 202)

    (got,) = sub.recorder.wait_for(1)
    assert got.body == b'{"n": 1}'  # the exact bytes, not re-serialized
    names = ("ce-id", "ce-type", "ce-source", "ce-specversion", "content-type")
    assert {k: got.headers[k] for k in names} == {
        "ce-id": "hello-1", "ce-type": "demo.hello", "ce-source": "/tests", "ce-specversion": "1.0",
        "content-type": "application/json"}
    assert "ce-time" not in got.headers  # nothing invented on the way

    stored_records = topic_records(kafka_bootstrap, "knative-broker-default-accept")
    records = {dict(r.headers)["ce_id"].decode(): r for r in stored_records}
    assert set(records) == {"other-1", "hello-1"}
    stored = records["hello-1"]
    assert stored.key == b"order-7" and stored.value == b'{"n": 1}'
    assert dict(stored.headers)["ce_type"] == b"demo.hello"
    assert dict(stored.headers)["content-type"] == b"application/json"
    assert sub.recorder.ids() == ["hello-1"]


def test_structured_event_is_stored_in_binary_mode(eventing, subscriber):
    sub = subscriber()
    ev = eventing([broker("structured"), trigger("structured-all", "structured", sub.url)])
    body = {"specversion": "1.0", "id": "s-1", "type": "demo.s", "source": "/s", "subject": "x",
            "datacontenttype": "application/json", "data": {"k": "v"}}
    response = ev.client.post("/default/structured", content=json.dumps(body),
                              headers={"content-type": "application/cloudevents+json"})
    assert response.status_code == 202
    (got,) = sub.recorder.wait_for(1)
    assert got.headers["ce-id"] == "s-1" and got.headers["ce-subject"] == "x"
    assert json.loads(got.body) == {"k": "v"}


def test_refusals_answer_like_knative_and_store_nothing(eventing, kafka_bootstrap):
    ev = eventing([broker("refuse")], PAR_EVENTING_MAX_BODY_BYTES=1024)
    good = ce_headers("r-1")
    no_id = {k: v for k, v in good.items() if k != "ce-id"}
    cases = [
        (ev.client.post("/default/refuse", content=b"{}", headers=no_id), 400),
        (ev.client.post("/default/refuse", content=b"{}", headers={**good, "ce-specversion": "0.9"}), 400),
        (ev.client.post("/default/refuse", content=b"{}", headers={"content-type": "text/plain"}), 400),
        (ev.client.post("/default/refuse", content=b"{not json",
                        headers={"content-type": "application/cloudevents+json"}), 400),
        (ev.client.post("/default/refuse", content=b"x" * 2048, headers=good), 413),
        (ev.client.post("/default/missing", content=b"{}", headers=good), 404),
        (ev.client.get("/default/refuse"), 405),
        (ev.client.put("/default/refuse", content=b"{}", headers=good), 405),
    ]
    assert [r.status_code for r, _ in cases] == [code for _, code in cases]
    assert "id" in cases[0][0].text
    assert topic_records(kafka_bootstrap, "knative-broker-default-refuse") == []


def test_reply_goes_back_into_the_broker(eventing, subscriber):
    def reply(received, attempt):
        return 200, {"ce-specversion": "1.0", "ce-id": "reply-" + received.id, "ce-type": "demo.reply",
                     "ce-source": "/replier", "content-type": "application/json"}, b'{"ok": true}'

    replier, sink = subscriber(respond=reply), subscriber()
    ev = eventing([
        broker("replies"),
        trigger("replies-ask", "replies", replier.url, filter={"attributes": {"type": "demo.ask"}}),
        trigger("replies-sink", "replies", sink.url, filter={"attributes": {"type": "demo.reply"}}),
    ])
    assert ev.post("replies", "q-1", type_="demo.ask").status_code == 202
    (got,) = sink.recorder.wait_for(1)
    assert got.id == "reply-q-1" and got.body == b'{"ok": true}' and got.headers["ce-source"] == "/replier"


def test_new_filters_and_cesql(eventing, subscriber):
    sub = subscriber()
    filters = [{"any": [{"prefix": {"type": "com.shop."}}, {"exact": {"type": "legacy"}}]},
               {"not": {"suffix": {"type": ".debug"}}},
               {"cesql": "source LIKE '/tests%' AND (NOT EXISTS tier OR tier IN ('gold', 'silver'))"}]
    ev = eventing([broker("filters"), trigger("filters-t", "filters", sub.url, filters=filters)])
    sent = {"f-1": ("com.shop.order", {}), "f-2": ("com.shop.order.debug", {}),
            "f-3": ("legacy", {"tier": "gold"}), "f-4": ("other", {}),
            "f-5": ("com.shop.x", {"tier": "bronze"}), "f-6": ("com.shop.y", {"tier": "silver"})}
    for event_id, (type_, ext) in sent.items():
        assert ev.post("filters", event_id, type_=type_, **ext).status_code == 202
    sub.recorder.wait_for(3)
    ev.post("filters", "f-last", type_="com.shop.last")
    sub.recorder.wait_for(4)
    assert sorted(sub.recorder.ids()) == ["f-1", "f-3", "f-6", "f-last"]


def test_metrics_count_accepted_rejected_delivered(eventing, subscriber, kafka_kind):
    sub = subscriber()
    name = f"metered-{kafka_kind}"  # the process's metrics outlive the broker of the other run
    ev = eventing([broker(name), trigger(f"{name}-t", name, sub.url)])
    ev.post(name, "m-1")
    ev.client.post(f"/default/{name}", content=b"{}", headers={"content-type": "text/plain"})
    sub.recorder.wait_for(1)
    text = ev.client.get("/metrics").text
    assert f'par_eventing_events_accepted_total{{broker="{name}",namespace="default"}} 1.0' in text
    assert 'par_eventing_events_rejected_total{code="400"}' in text
    assert f'par_eventing_events_delivered_total{{namespace="default",trigger="{name}-t"}} 1.0' in text
    latency = "par_eventing_delivery_latency_seconds_count"
    assert f'{latency}{{namespace="default",trigger="{name}-t"}} 1.0' in text


def test_round_trip_stores_and_delivers_the_bytes_knative_does(eventing, subscriber, kafka_bootstrap):
    """What Knative's receiver (the CloudEvents Java SDK) stores for each request, and what a
    subscriber then gets: attributes, extensions and data bytes, through Kafka and back to HTTP."""
    sub = subscriber()
    ev = eventing([broker("bytes"), trigger("bytes-all", "bytes", sub.url)])
    structured = {"content-type": "application/cloudevents+json"}
    base = {"specversion": "1.0", "source": "/rt", "type": "demo.rt"}
    sent = [
        # JSON data, pretty-printed by the client: stored compact, non-ASCII as UTF-8; content type defaulted
        (structured, json.dumps({**base, "id": "rt-json", "time": "2026-12-01T10:00:00.120Z", "flag": True,
                                 "count": 42, "data": {"world": "hello", "ü": [1, 2.5]}}, indent=2).encode()),
        # data_base64: decoded bytes
        (structured, json.dumps({**base, "id": "rt-b64", "datacontenttype": "application/octet-stream",
                                 "data_base64": base64.b64encode(b"\x00\x01\xfe\xff").decode()}).encode()),
        # a string of another content type: its UTF-8 bytes, no JSON quotes
        (structured, json.dumps({**base, "id": "rt-text", "datacontenttype": "text/plain",
                                 "data": 'héllo "x"'}).encode()),
        # binary mode: percent-encoded header values, the body's bytes untouched
        ({"ce-specversion": "1.0", "ce-id": "rt-bin", "ce-source": "/rt", "ce-type": "demo.rt",
          "ce-time": "2026-12-01T10:00:00.123456789Z", "ce-note": "h%C3%A9llo%20100%25%20%22ok%22",
          "content-type": "application/json"}, b'{"n": 1,  "s": "\xc3\xa9"}'),
    ]
    for headers, body in sent:
        assert ev.client.post("/default/bytes", content=body, headers=headers).status_code == 202

    stored = {dict(r.headers)["ce_id"].decode(): r
              for r in topic_records(kafka_bootstrap, topic_name("default", "bytes"))}
    expected = {
        "rt-json": ('{"world":"hello","ü":[1,2.5]}'.encode(),
                    {"content-type": b"application/json", "ce_time": b"2026-12-01T10:00:00.120Z",
                     "ce_flag": b"true", "ce_count": b"42"}),
        "rt-b64": (b"\x00\x01\xfe\xff", {"content-type": b"application/octet-stream"}),
        "rt-text": ('héllo "x"'.encode(), {"content-type": b"text/plain"}),
        "rt-bin": (b'{"n": 1,  "s": "\xc3\xa9"}',
                   {"content-type": b"application/json", "ce_time": b"2026-12-01T10:00:00.123456789Z",
                    "ce_note": 'héllo 100% "ok"'.encode()}),
    }
    assert set(stored) == set(expected)
    for event_id, (value, headers) in expected.items():
        record = stored[event_id]
        assert record.value == value, event_id
        got = dict(record.headers)
        assert {k: v for k, v in got.items() if k in headers} == headers, event_id
        assert (got["ce_source"], got["ce_type"], got["ce_specversion"]) == (b"/rt", b"demo.rt", b"1.0")

    delivered = {r.id: r for r in sub.recorder.wait_for(4)}
    for event_id, (value, _) in expected.items():
        assert delivered[event_id].body == value, event_id
    json_event = delivered["rt-json"].headers
    names = ("content-type", "ce-flag", "ce-count", "ce-time")
    assert [json_event[n] for n in names] == ["application/json", "true", "42", "2026-12-01T10:00:00.120Z"]
    binary = delivered["rt-bin"].headers
    assert binary["ce-note"] == "h%C3%A9llo%20100%25%20%22ok%22"  # encoded again, as the HTTP binding says
    assert binary["ce-time"] == "2026-12-01T10:00:00.123456789Z"
    assert "ce-time" not in delivered["rt-b64"].headers


@pytest.mark.parametrize(
    ("fields", "reason"),
    [({"datacontenttype": "text/plain", "data": {"a": 1}}, "JSON string"),
     ({"data": "x", "data_base64": "AA=="}, "not both"),
     ({"ratio": 1.5}, "not an integer")],
)
def test_structured_event_knative_refuses_is_a_400(eventing, fields, reason):
    ev = eventing([broker("strict")])
    body = {"specversion": "1.0", "id": "x-1", "source": "/rt", "type": "demo.rt", **fields}
    response = ev.client.post("/default/strict", content=json.dumps(body),
                              headers={"content-type": "application/cloudevents+json"})
    assert response.status_code == 400 and reason in response.text
