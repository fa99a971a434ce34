"""CloudEvents on the wire: HTTP in (binary or structured), Kafka binary mode, HTTP binary out.

Everything goes through the cloudevents 2.x bindings. Two choices keep the broker faithful:
the event factory never invents attributes (the SDK's own adds `id` and `time`), and the data
is carried as the exact bytes received (a JSON body is not re-serialized on the way through).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings import http, kafka
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat

from runtime.events import ExactEvent

REQUIRED = ("specversion", "id", "source", "type")
STRUCTURED_JSON = "application/cloudevents+json"


class InvalidEvent(ValueError):
    """The request is not a valid CloudEvent (the ingress answers 400)."""


class RawDataFormat(JSONFormat):
    """JSON event format whose binary-mode data stays the bytes it arrived as."""

    def read_data(self, body: bytes, datacontenttype: str | None) -> bytes | None:
        return body or None


FORMAT = RawDataFormat()


def _check_required(attributes: dict[str, Any]) -> None:
    missing = [name for name in REQUIRED if not attributes.get(name)]
    if missing:
        raise InvalidEvent(f"missing required attribute(s): {', '.join(missing)}")
    if attributes["specversion"] != "1.0":
        raise InvalidEvent(f"unsupported specversion {attributes['specversion']!r} (only 1.0)")


def from_http(headers: dict[str, str], body: bytes) -> BaseCloudEvent:
    """Parse a binary- or structured-mode HTTP request; raise InvalidEvent naming the problem."""
    lowered = {k.lower(): v for k, v in headers.items()}
    content_type = lowered.get("content-type", "")
    attributes = {k[3:]: v for k, v in lowered.items() if k.startswith("ce-")}
    try:
        if attributes:
            _check_required(attributes)
            return http.from_binary(http.HTTPMessage(lowered, body), FORMAT, ExactEvent)
        if content_type.split(";")[0].strip().lower() != STRUCTURED_JSON:
            raise InvalidEvent(
                f"not a CloudEvent: no ce-* headers and content type {content_type or 'missing'!r} "
                f"is not {STRUCTURED_JSON}"
            )
        fields = json.loads(body)
        if not isinstance(fields, dict):
            raise InvalidEvent("structured CloudEvent must be a JSON object")
        _check_required(fields)
        return http.from_structured(http.HTTPMessage(lowered, body), FORMAT, ExactEvent)
    except InvalidEvent:
        raise
    except (BaseCloudEventException, ValueError, TypeError) as exc:
        raise InvalidEvent(f"invalid CloudEvent: {exc}") from exc


def to_kafka(event: BaseCloudEvent) -> kafka.KafkaMessage:
    """Binary content mode record: ce_* headers, record key from the partitionkey extension."""
    return kafka.to_binary(event, FORMAT)


def from_kafka(headers: list[tuple[str, bytes]] | tuple, key: bytes | None, value: bytes) -> BaseCloudEvent:
    """Parse a record written by `to_kafka` (or by Knative's broker) without inventing attributes."""
    return kafka.from_binary(kafka.KafkaMessage(dict(headers), key, value or b""), FORMAT, ExactEvent)


def to_http(event: BaseCloudEvent) -> http.HTTPMessage:
    """Binary content mode HTTP request for a subscriber."""
    return http.to_binary(event, FORMAT)


def with_extensions(event: BaseCloudEvent, extensions: dict[str, str]) -> BaseCloudEvent:
    """A copy of `event` with extra extension attributes (used for dead-letter error context)."""
    return ExactEvent({**event.get_attributes(), **extensions}, event.get_data())


def attribute_strings(event: BaseCloudEvent) -> dict[str, str]:
    """Attribute values as their wire strings, what Trigger filters compare against."""
    out: dict[str, str] = {}
    for name, value in event.get_attributes().items():
        if isinstance(value, datetime):
            text = value.isoformat()
            out[name] = text[:-6] + "Z" if text.endswith("+00:00") else text
        elif value is not None:
            out[name] = str(value)
    return out


def has_event(headers: dict[str, str]) -> bool:
    """Whether an HTTP response carries a CloudEvent (a reply to route back into the broker)."""
    lowered = {k.lower() for k in headers}
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    return "ce-id" in lowered or content_type == STRUCTURED_JSON
