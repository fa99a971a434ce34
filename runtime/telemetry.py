"""OpenTelemetry spans, only when an exporter is configured by the standard `OTEL_*` variables.

`tracer(name)` is None unless `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
is set (and neither `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none`): every call site
checks that one module-level value and, without an exporter, does nothing else, so tracing costs
no measurable time then (the W3C context of `runtime.tracecontext` is still passed on). With one,
the SDK reads the rest of its configuration itself (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
`OTEL_TRACES_SAMPLER`, `OTEL_EXPORTER_OTLP_*` headers, timeout, protocol `http/protobuf`) and batches
spans to the OTLP HTTP endpoint.

A span made here runs in the hop's `TraceContext`: its parent is the caller's context, and the
context passed on names the span's id (`context_of`), so traces join across processes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from runtime.tracecontext import TraceContext, continue_or_start, extract_raw, reset_current, set_current

log = logging.getLogger("runtime.telemetry")

_providers: dict[str, Any] = {}  # one TracerProvider per process (keyed by nothing but "the")
_disabled = object()


def enabled() -> bool:
    """An OTLP endpoint is configured (the standard variables) and tracing is not switched off."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() in ("none", ""):
        return False
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def tracer(name: str, service: str | None = None) -> Any | None:
    """An OpenTelemetry tracer for instrumentation scope `name`, or None without an exporter.
    The first call sets up the process's provider (`service`: `service.name` unless
    `OTEL_SERVICE_NAME` names one)."""
    provider = _providers.get("the")
    if provider is None:
        provider = _setup(service or name.split(".")[0])
        _providers["the"] = provider
    if provider is _disabled:
        return None
    return provider.get_tracer(name)


def _setup(service: str) -> Any:
    if not enabled():
        return _disabled
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: f"par-{service}"}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    log.info("tracing to OTLP", extra={"service": service})
    return provider


def use_provider(provider: Any | None) -> None:
    """Tests: spans go to this provider (None: decided again from the environment)."""
    if provider is None:
        _providers.pop("the", None)
    else:
        _providers["the"] = provider


def parent(context: TraceContext | None) -> Any | None:
    """The OpenTelemetry context whose current span is `context` (remote), for a child span."""
    if context is None:
        return None
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

    state = TraceState.from_header([context.tracestate]) if context.tracestate else None
    span_context = SpanContext(
        int(context.trace_id, 16), int(context.span_id, 16), is_remote=True,
        trace_flags=TraceFlags(context.flags & 0xFF), trace_state=state,
    )
    return trace.set_span_in_context(NonRecordingSpan(span_context))


def context_of(span: Any, like: TraceContext | None) -> TraceContext:
    """The `TraceContext` naming `span` (to pass on), keeping `like`'s tracestate and baggage."""
    found = span.get_span_context()
    return TraceContext(
        format(found.trace_id, "032x"), format(found.span_id, "016x"), int(found.trace_flags),
        tracestate=like.tracestate if like else None, baggage=like.baggage if like else None,
    )


def start(
    tracer: Any, name: str, context: TraceContext | None, kind: str = "INTERNAL",
    attributes: Mapping[str, Any] | None = None,
) -> Any:
    """A started span named `name`, child of `context` (a new trace without one)."""
    from opentelemetry.trace import SpanKind

    return tracer.start_span(name, context=parent(context), kind=SpanKind[kind], attributes=attributes)


class Propagate:
    """ASGI middleware: each HTTP request runs with its trace context current (the caller's
    `traceparent`, else a delivered binary-mode event's `ce-traceparent`, else a new trace) under a
    span id of its own, and answers with that `traceparent` so a caller can find the trace."""

    def __init__(self, app, ratio: float = 1.0) -> None:
        self.app = app
        self.ratio = ratio
        self.tracer = tracer("runtime", "runtime")  # None without an OTLP exporter

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = scope["headers"]
        incoming = extract_raw(raw)
        if incoming is None:
            incoming = extract_raw(
                (name[3:], value) for name, value in raw if name in (b"ce-traceparent", b"ce-tracestate")
            )
        if self.tracer is not None:
            await self._traced(scope, receive, send, incoming)
            return
        context = continue_or_start(incoming, self.ratio)
        header = (b"traceparent", context.traceparent.encode())

        async def send_traced(message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _with_traceparent(message, header)
            await send(message)

        token = set_current(context)
        try:
            await self.app(scope, receive, send_traced)
        finally:
            reset_current(token)

    async def _traced(self, scope, receive, send, incoming: TraceContext | None) -> None:
        """The request in an OpenTelemetry server span (HTTP semantic conventions: named
        `{method} {route}` once the route is known), the handler's call included."""
        method = scope["method"]
        span = start(self.tracer, method, incoming, "SERVER", {
            "http.request.method": method, "url.path": scope["path"],
            "url.scheme": scope.get("scheme", "http"),
        })
        context = context_of(span, incoming)
        header = (b"traceparent", context.traceparent.encode())
        status = 500

        async def send_traced(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = _with_traceparent(message, header)
            await send(message)

        token = set_current(context)
        try:
            await self.app(scope, receive, send_traced)
        finally:
            reset_current(token)
            route = getattr(scope.get("route"), "path", None)
            if route:
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                from opentelemetry.trace import StatusCode

                span.set_status(StatusCode.ERROR)
                span.set_attribute("error.type", str(status))
            span.end()


def _with_traceparent(message: Any, header: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    """A response start's headers with this request's `traceparent` in place of any other."""
    return [*(h for h in message.get("headers", ()) if h[0].lower() != b"traceparent"), header]
