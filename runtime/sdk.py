"""The agent-facing SDK: emit CloudEvents to the configured sink; leave an A2A task open.

    from runtime.sdk import emit, aemit
    emit("com.example.order.created", {"id": 42})            # sync handlers
    await aemit("com.example.order.created", {"id": 42})     # async handlers

    return input_required("Which city?")                     # A2A: the task waits for the next message
    return keep_working(lambda: slow_part(), "on it")        # A2A: answered now, still working

Events go in binary content mode (attributes as `ce-*` headers) to `K_SINK`, which Knative's
SinkBinding (or PAR's local platform) injects; `sink=` overrides it. The source defaults to
`/agents/<this agent>`.

Trace context: inside a request (or event) the runtime serves, an emitted event carries the
request's trace as the CloudEvents Distributed Tracing extension (`traceparent`, `tracestate`) and
the same W3C headers (with `baggage`) on the POST; `trace_headers()` gives those headers for the
agent's own outbound HTTP calls (`httpx.get(url, headers=trace_headers())`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from cloudevents.core.bindings.http import HTTPMessage, to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from runtime import tracecontext
from runtime.tasks import Pending

DEFAULT_TIMEOUT = 10.0


def input_required(message: Any) -> Pending:
    """An A2A handler's answer that leaves its task `input-required` with `message` (text or data)
    for the client; the client's next message with this taskId goes to the handler again."""
    return Pending("input-required", message)


def keep_working(then: Callable[[], Awaitable[Any]], message: Any = None) -> Pending:
    """An A2A handler's answer that leaves its task `working`: `message/send` answers now, and
    `then()` (awaited in the background, within the request time limit) settles the task as a
    handler's result does (a result completes it, `input_required(...)` waits for input)."""
    return Pending("working", message, then)


def trace_headers() -> dict[str, str]:
    """`traceparent`, `tracestate` and `baggage` of the request being handled, for an outbound
    call to continue its trace ({} outside one)."""
    return tracecontext.current_headers()


class SinkNotConfigured(RuntimeError):
    """No `K_SINK` in the environment and no `sink=` argument."""


class EmitError(RuntimeError):
    """The sink did not accept the event (transport error or a non-2xx answer)."""


def _sink(sink: str | None) -> str:
    target = sink or os.environ.get("K_SINK")
    if not target:
        raise SinkNotConfigured(
            "no event sink: K_SINK is not set (bind the agent to a broker with a SinkBinding, "
            "or pass sink=URL)"
        )
    return target


def _default_source() -> str:
    name = os.environ.get("PAR_AGENT_NAME") or os.environ.get("K_SERVICE") or "unknown"
    return f"/agents/{name}"


def build_message(
    type: str,
    data: Any = None,
    *,
    source: str | None = None,
    subject: str | None = None,
    extensions: dict[str, Any] | None = None,
) -> HTTPMessage:
    """The binary-mode HTTP message for one event: JSON data, or text for str, octets for bytes."""
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": source or _default_source(),
        "type": type,
        "time": datetime.now(UTC),
    }
    if data is not None:
        attributes["datacontenttype"] = _content_type(data)
    if subject:
        attributes["subject"] = subject
    context = tracecontext.current()
    if context is not None:
        attributes["traceparent"] = context.traceparent
        if context.tracestate:
            attributes["tracestate"] = context.tracestate
    attributes.update(extensions or {})
    message = to_binary(CloudEvent(attributes, data), JSONFormat())
    if context is not None:
        message.headers.update(context.headers())
    return message


def _content_type(data: Any) -> str:
    if isinstance(data, bytes):
        return "application/octet-stream"
    return "text/plain; charset=utf-8" if isinstance(data, str) else "application/json"


def _failed(event_type: str, sink: str, exc: Exception) -> EmitError:
    return EmitError(f"sending {event_type} to {sink} failed: {exc.__class__.__name__}: {exc}")


def _check(response: httpx.Response, sink: str) -> httpx.Response:
    if response.status_code >= 300:
        raise EmitError(f"sink {sink} answered HTTP {response.status_code}: {response.text[:200]}")
    return response


def emit(
    type: str,
    data: Any = None,
    *,
    source: str | None = None,
    subject: str | None = None,
    extensions: dict[str, Any] | None = None,
    sink: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> httpx.Response:
    """POST one CloudEvent to the sink; returns the sink's response (a reply event may be in it)."""
    target = _sink(sink)
    message = build_message(type, data, source=source, subject=subject, extensions=extensions)
    try:
        response = httpx.post(target, headers=message.headers, content=message.body, timeout=timeout)
    except httpx.HTTPError as exc:
        raise _failed(type, target, exc) from exc
    return _check(response, target)


async def aemit(
    type: str,
    data: Any = None,
    *,
    source: str | None = None,
    subject: str | None = None,
    extensions: dict[str, Any] | None = None,
    sink: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - the shared contract names it `timeout`
) -> httpx.Response:
    """`emit` for async code."""
    target = _sink(sink)
    message = build_message(type, data, source=source, subject=subject, extensions=extensions)
    async with httpx.AsyncClient(timeout=timeout) as client:
        try:
            response = await client.post(target, headers=message.headers, content=message.body)
        except httpx.HTTPError as exc:
            raise _failed(type, target, exc) from exc
    return _check(response, target)
