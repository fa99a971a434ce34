"""CloudEvents on the wire: HTTP in (binary or structured), Kafka binary mode, HTTP binary out.

Everything goes through the cloudevents 2.x bindings, with event factories that make the broker
store what Knative's Kafka broker receiver (the CloudEvents Java SDK) stores for the same request:

- nothing invented (the SDK's own factory adds `id` and `time`), and `time` written back exactly
  as it came (the SDK would re-render `...00.120Z` as `...00.120000Z` and drop nanoseconds);
- binary mode: the data bytes unchanged; header values percent-decoded from HTTP, stored as plain
  UTF-8 in Kafka headers and percent-encoded again towards subscribers (the HTTP and Kafka bindings);
- structured mode: `data_base64` decoded to its bytes; JSON `data` as compact JSON (no spaces,
  non-ASCII unescaped), `datacontenttype` defaulting to `application/json` as the JSON format says;
  a string `data` of another content type as its UTF-8 bytes; extension values as their canonical
  strings (`true`, `42`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from cloudevents.core.base import BaseCloudEvent, EventFactory
from cloudevents.core.bindings import http, kafka
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat

from runtime import tracecontext
from runtime.events import ExactEvent

REQUIRED = ("specversion", "id", "source", "type")
KNOWN_ATTRIBUTES = frozenset((*REQUIRED, "datacontenttype", "dataschema", "subject", "time"))
STRUCTURED_JSON = "application/cloudevents+json"


class InvalidEvent(ValueError):
    """The request is not a valid CloudEvent (the ingress answers 400)."""


class RawDataFormat(JSONFormat):
    """JSON event format whose binary-mode data stays the bytes it arrived as."""

    def read_data(self, body: bytes, datacontenttype: str | None) -> bytes | None:
        return body or None


FORMAT = RawDataFormat()


class WireTime(datetime):
    """A `time` attribute that the bindings write back as the text it was received as."""

    text: str

    def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
        return self.text


def _keep_time(attributes: dict[str, Any], text: str | None) -> None:
    parsed = attributes.get("time")
    if text is not None and isinstance(parsed, datetime):
        kept = WireTime.combine(parsed.date(), parsed.timetz())
        kept.text = text[:-6] + "Z" if text.endswith("+00:00") else text
        attributes["time"] = kept


def _exact(time_text: str | None) -> EventFactory:
    """`ExactEvent`, keeping `time` as received."""

    def make(attributes: dict[str, Any], data: Any = None) -> BaseCloudEvent:
        _keep_time(attributes, time_text)
        return ExactEvent(attributes, data)

    return make


def _json_text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _extension_text(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        raise InvalidEvent(f"extension {name!r}: {value} is not an integer (CloudEvents has no decimals)")
    return value if isinstance(value, str) else _json_text(value)


def _as_stored(fields: dict[str, Any]) -> EventFactory:
    """The factory for a structured-mode event: attributes and data as Knative's receiver stores them."""
    has_data = "data" in fields

    def make(attributes: dict[str, Any], data: Any = None) -> BaseCloudEvent:
        _keep_time(attributes, fields.get("time"))
        if has_data and attributes.get("datacontenttype") is None:
            attributes["datacontenttype"] = "application/json"
        content_type = attributes.get("datacontenttype")
        if has_data:
            if JSONFormat.JSON_CONTENT_TYPE_PATTERN.match(content_type or ""):
                data = _json_text(fields["data"]).encode()
            elif isinstance(data, str):
                data = data.encode()
            else:
                raise InvalidEvent(f"data must be a JSON string when datacontenttype is {content_type!r}")
        for name, value in attributes.items():
            if name not in KNOWN_ATTRIBUTES and value is not None:
                attributes[name] = _extension_text(name, value)
        return ExactEvent({k: v for k, v in attributes.items() if v is not None}, data)

    return make


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
            time = attributes.get("time")
            factory = _exact(unquote(time) if time is not None else None)
            return http.from_binary(http.HTTPMessage(lowered, body), FORMAT, factory)
        if content_type.split(";")[0].strip().lower() != STRUCTURED_JSON:
            raise InvalidEvent(
                f"not a CloudEvent: no ce-* headers and content type {content_type or 'missing'!r} "
                f"is not {STRUCTURED_JSON}"
            )
        fields = json.loads(body)
        if not isinstance(fields, dict):
            raise InvalidEvent("structured CloudEvent must be a JSON object")
        _check_required(fields)
        if "data" in fields and "data_base64" in fields:
            raise InvalidEvent("a structured CloudEvent has data or data_base64, not both")
        return http.from_structured(http.HTTPMessage(lowered, body), FORMAT, _as_stored(fields))
    except InvalidEvent:
        raise
    except (BaseCloudEventException, ValueError, TypeError) as exc:
        raise InvalidEvent(f"invalid CloudEvent: {exc}") from exc


def to_kafka(event: BaseCloudEvent) -> kafka.KafkaMessage:
    """Binary content mode record: ce_* headers, record key from the partitionkey extension."""
    return kafka.to_binary(event, FORMAT)


def from_kafka(headers: list[tuple[str, bytes]] | tuple, key: bytes | None, value: bytes) -> BaseCloudEvent:
    """Parse a record written by `to_kafka` (or by Knative's broker) without inventing attributes."""
    fields = dict(headers)
    time = fields.get("ce_time")
    factory = _exact(time.decode() if time is not None else None)
    return kafka.from_binary(kafka.KafkaMessage(fields, key, value or b""), FORMAT, factory)


def to_http(event: BaseCloudEvent) -> http.HTTPMessage:
    """Binary content mode HTTP request for a subscriber."""
    return http.to_binary(event, FORMAT)


def with_extensions(event: BaseCloudEvent, extensions: dict[str, str]) -> BaseCloudEvent:
    """A copy of `event` with extra extension attributes (used for dead-letter error context)."""
    return ExactEvent({**event.get_attributes(), **extensions}, event.get_data())


def traced(event: BaseCloudEvent, headers: Mapping[str, str]) -> BaseCloudEvent:
    """The event with the CloudEvents Distributed Tracing extension: its own `traceparent` (and
    `tracestate`) if it has one, else the W3C trace context the HTTP request came with (`headers`
    lowercased), as Knative's broker keeps the producer's trace on the stored event."""
    if event.get_extension("traceparent") is not None:
        return event
    context = tracecontext.extract(headers)
    if context is None:
        return event
    extensions = {"traceparent": context.traceparent}
    if context.tracestate:
        extensions["tracestate"] = context.tracestate
    return with_extensions(event, extensions)


def trace_headers(event: BaseCloudEvent) -> dict[str, str]:
    """W3C headers continuing the event's trace (its `traceparent` attribute) under a new span id:
    the HTTP request of one delivery attempt ({} for an event without a valid one)."""
    context = event_trace(event)
    return context.child().headers() if context is not None else {}


def event_trace(event: BaseCloudEvent) -> tracecontext.TraceContext | None:
    """The event's Distributed Tracing extension as a trace context (None without a valid one)."""
    parsed = tracecontext.parse_traceparent(event.get_extension("traceparent"))
    if parsed is None:
        return None
    state = event.get_extension("tracestate")
    return tracecontext.TraceContext(*parsed, tracestate=str(state) if state else None)


def span_attributes(event: BaseCloudEvent) -> dict[str, str]:
    """The CloudEvents semantic conventions' span attributes of an event."""
    out = {
        "cloudevents.event_id": event.get_id(), "cloudevents.event_source": event.get_source(),
        "cloudevents.event_type": event.get_type(), "cloudevents.event_spec_version": "1.0",
    }
    if event.get_subject():
        out["cloudevents.event_subject"] = str(event.get_subject())
    return out


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
