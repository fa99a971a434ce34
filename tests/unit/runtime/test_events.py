"""CloudEvents in: parsed with the SDK's bindings, nothing invented, clear reasons for rejects."""

from __future__ import annotations

import json

import pytest

from runtime.events import NotACloudEvent, parse, reply, target_action

BINARY = {"ce-specversion": "1.0", "ce-id": "abc", "ce-source": "/s", "ce-type": "com.example.greet"}


def test_binary_event_is_taken_exactly_as_sent() -> None:
    event = parse(BINARY | {"Content-Type": "application/json", "ce-partitionkey": "k"}, b'{"a": 1}')
    assert event.get_id() == "abc"
    assert event.get_time() is None  # the SDK's own from_http would add one
    assert event.get_extension("partitionkey") == "k"
    assert event.get_data() == {"a": 1}


def test_structured_event_is_taken_exactly_as_sent() -> None:
    body = json.dumps(
        {"specversion": "1.0", "id": "x1", "source": "/s", "type": "t", "data": [1, 2]}
    ).encode()
    event = parse({"content-type": "application/cloudevents+json; charset=utf-8"}, body)
    assert event.get_id() == "x1" and event.get_time() is None and event.get_data() == [1, 2]


@pytest.mark.parametrize("missing", ["ce-id", "ce-source", "ce-type", "ce-specversion"])
def test_missing_required_attribute_is_named(missing: str) -> None:
    headers = {k: v for k, v in BINARY.items() if k != missing}
    with pytest.raises(NotACloudEvent, match=missing.removeprefix("ce-")):
        parse(headers, b"{}")


def test_empty_id_and_bad_time_are_rejected() -> None:
    with pytest.raises(NotACloudEvent, match="id"):
        parse(BINARY | {"ce-id": ""}, b"{}")
    with pytest.raises(NotACloudEvent, match="malformed"):
        parse(BINARY | {"ce-time": "yesterday"}, b"{}")


def test_plain_json_and_batches_are_not_events() -> None:
    with pytest.raises(NotACloudEvent, match="no ce-\\* headers"):
        parse({"content-type": "application/json"}, b"{}")
    with pytest.raises(NotACloudEvent, match="batched"):
        parse({"content-type": "application/cloudevents-batch+json"}, b"[]")


def test_type_to_action_mapping() -> None:
    actions = {"greet": None, "com.example.exact": None}
    assert target_action("com.example.exact", actions) == "com.example.exact"
    assert target_action("com.example.greet", actions) == "greet"
    assert target_action("greet", actions) == "greet"
    assert target_action("com.example.other", actions) is None


def test_reply_event_attributes() -> None:
    event = parse(BINARY | {"ce-subject": "sub"}, b"{}")
    headers, body = reply(event, {"ok": True}, "/agents/demo")
    assert headers["ce-type"] == "com.example.greet.reply"
    assert headers["ce-source"] == "/agents/demo" and headers["ce-subject"] == "sub"
    assert headers["ce-id"] != "abc" and headers["content-type"] == "application/json"
    assert json.loads(body) == {"ok": True}
