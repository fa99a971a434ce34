"""CloudEvents delivered to the agent (`POST /`), binary or structured mode, via the cloudevents
2.x HTTP binding, answered Knative-style with a reply event in the response.

Mapping: an event whose `type` names an a2a custom handler exactly — or whose last dot-separated
segment does (`com.example.greet` -> `greet`) — calls that handler with the event data as its
params; any other event calls the entrypoint with the data as its context (non-object data is
wrapped as `{"data": ...}`). A result becomes the reply event (type `<type>.reply`, JSON data);
`None` means no reply (202). A handler error is a 500/504 problem+json body, so the sender retries.

The SDK's own `from_http` invents a missing `id` and adds a `time`; a receiver must not, so the
required attributes are checked as received and the event factory below adds nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from cloudevents.core.bindings.http import HTTPMessage, from_binary, from_structured, to_binary
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from runtime import tracecontext

REQUIRED = ("specversion", "id", "source", "type")
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
_FORMAT = JSONFormat()


class NotACloudEvent(ValueError):
    """The request is not a valid CloudEvent; the message is the reason (sent back with a 400)."""


class ExactEvent(CloudEvent):
    """A v1.0 event factory that adds nothing: no generated `id`, no added `time` (the SDK's
    own does both). Every receiver of events in PAR (this runtime, the broker) parses with it."""

    def __init__(self, attributes: dict[str, Any], data: Any = None) -> None:
        self._validate_attribute(attributes=attributes)
        self._attributes = attributes
        self._data = data


class ReceivedEvent(ExactEvent):
    """An event delivered to the agent, its required attributes checked as received."""

    def __init__(self, attributes: dict[str, Any], data: Any = None) -> None:
        missing = [name for name in REQUIRED if not attributes.get(name)]
        if missing:
            raise NotACloudEvent(f"missing required attribute(s): {', '.join(missing)}")
        if attributes["specversion"] != "1.0":
            raise NotACloudEvent(f"unsupported specversion {attributes['specversion']!r} (only 1.0)")
        super().__init__(attributes, data)


def parse(headers: dict[str, str], body: bytes) -> ReceivedEvent:
    """Binary mode when any `ce-` header is present, structured mode for `application/cloudevents+json`."""
    headers = {k.lower(): v for k, v in headers.items()}
    content_type = headers.get("content-type", "")
    message = HTTPMessage(headers=headers, body=body)
    try:
        if any(k.startswith("ce-") for k in headers):
            event = from_binary(message, _FORMAT, ReceivedEvent)
        elif content_type.startswith(STRUCTURED):
            event = from_structured(message, _FORMAT, ReceivedEvent)
        elif content_type.startswith(BATCH):
            raise NotACloudEvent("batched CloudEvents are not accepted; send one event per request")
        else:
            raise NotACloudEvent(
                f"no ce-* headers and content type {content_type or '(none)'!r} is not {STRUCTURED}"
            )
    except NotACloudEvent:
        raise
    except BaseCloudEventException as exc:
        raise NotACloudEvent(str(exc)) from exc
    except (ValueError, TypeError, AttributeError) as exc:
        raise NotACloudEvent(f"malformed event: {exc}") from exc
    assert isinstance(event, ReceivedEvent)
    return event


def target_action(event_type: str, actions: dict[str, Any]) -> str | None:
    """The a2a handler an event type maps to, if any (see the module docstring)."""
    if event_type in actions:
        return event_type
    last = event_type.rsplit(".", 1)[-1]
    return last if last in actions else None


def reply(event: ReceivedEvent, result: Any, source: str) -> tuple[dict[str, str], bytes]:
    """The reply CloudEvent (binary mode) for a handler's result."""
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": source,
        "type": f"{event.get_type()}.reply",
        "time": datetime.now(UTC),
        "datacontenttype": "application/json",
    }
    if event.get_subject():
        attributes["subject"] = event.get_subject()
    context = tracecontext.current()  # the reply continues the delivery's trace
    if context is not None:
        attributes["traceparent"] = context.traceparent
        if context.tracestate:
            attributes["tracestate"] = context.tracestate
    message = to_binary(CloudEvent(attributes, result), _FORMAT)
    return message.headers, message.body
