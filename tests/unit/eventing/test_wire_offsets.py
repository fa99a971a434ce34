"""CloudEvents bindings (nothing invented, exact data bytes) and contiguous offset commits."""

import pytest

from eventing import wire
from eventing.offsets import OffsetTracker

BINARY = {"ce-specversion": "1.0", "ce-id": "1", "ce-type": "t", "ce-source": "/s",
          "content-type": "application/json", "ce-partitionkey": "k", "ce-traceparent": "00-ab%20cd"}


def test_binary_request_to_kafka_record_and_back_invents_nothing():
    event = wire.from_http(BINARY, b'{ "n":  1 }')
    assert "time" not in event.get_attributes() and event.get_data() == b'{ "n":  1 }'
    record = wire.to_kafka(event)
    assert record.key == "k" and record.value == b'{ "n":  1 }'
    assert record.headers["ce_id"] == b"1" and record.headers["content-type"] == b"application/json"
    assert record.headers["ce_traceparent"] == b"00-ab cd"  # percent-decoded from HTTP
    back = wire.from_kafka(list(record.headers.items()), b"k", record.value)
    message = wire.to_http(back)
    assert message.body == b'{ "n":  1 }'
    assert {k: v for k, v in message.headers.items() if k != "ce-traceparent"} == {
        k: v for k, v in BINARY.items() if k != "ce-traceparent"}


def test_structured_request_keeps_its_attributes():
    body = (b'{"specversion":"1.0","id":"x","type":"t","source":"/s","time":"2024-01-02T03:04:05Z",'
            b'"datacontenttype":"application/json","data":{"a":1}}')
    event = wire.from_http({"content-type": "application/cloudevents+json; charset=utf-8"}, body)
    assert wire.attribute_strings(event)["time"] == "2024-01-02T03:04:05Z"
    assert wire.to_kafka(event).value == b'{"a":1}'  # compact, as Knative's receiver stores it


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        ({k: v for k, v in BINARY.items() if k != "ce-id"}, b"", "id"),
        ({k: v for k, v in BINARY.items() if k != "ce-source"}, b"", "source"),
        ({**BINARY, "ce-specversion": "0.3"}, b"", "specversion"),
        ({"content-type": "application/json"}, b"{}", "no ce-"),
        ({"content-type": "application/cloudevents+json"}, b'{"specversion":"1.0","type":"t","source":"s"}',
         "id"),
        ({"content-type": "application/cloudevents+json"}, b"[1]", "JSON object"),
        ({"content-type": "application/cloudevents+json"}, b"\xff", "invalid CloudEvent"),
    ],
)
def test_invalid_events_are_refused_with_the_reason(headers, body, message):
    with pytest.raises(wire.InvalidEvent, match=message):
        wire.from_http(headers, body)


def test_reply_detection():
    assert wire.has_event({"ce-id": "1"}) and wire.has_event({"content-type": "application/cloudevents+json"})
    assert not wire.has_event({"content-type": "application/json"})


def test_commits_stay_contiguous_per_partition():
    tracker: OffsetTracker[int] = OffsetTracker()
    for offset in (10, 11, 12):
        tracker.start(0, offset)
    tracker.start(1, 5)
    tracker.done(0, 11)
    tracker.done(0, 12)
    assert tracker.committable() == {0: 10, 1: 5}
    tracker.mark_committed({0: 10, 1: 5})
    assert tracker.committable() == {}
    tracker.done(0, 10)
    tracker.done(1, 5)
    assert tracker.committable() == {0: 13, 1: 6}
    tracker.mark_committed({0: 13, 1: 6})
    tracker.skip(1, 6)  # filtered out: done without a delivery
    assert tracker.committable() == {1: 7} and tracker.in_flight() == 0
