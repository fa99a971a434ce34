"""Per-request observability as plain ASGI middleware: Prometheus metrics and one JSON log line
(agent, method, route, status, duration). Routes are labelled by their template, never the raw
path, so metric cardinality stays bounded."""

from __future__ import annotations

import logging
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

log = logging.getLogger("runtime.request")

Scope = dict[str, Any]


class Metrics:
    """The runtime's metrics, on their own registry (one per app, so tests can build many)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "par_runtime_requests",
            "HTTP requests served",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "par_runtime_errors", "Requests answered with a 5xx status", ["route"], registry=self.registry
        )
        self.latency = Histogram(
            "par_runtime_request_duration_seconds", "Request duration", ["route"], registry=self.registry
        )
        self.in_flight = Gauge(
            "par_runtime_requests_in_flight", "Requests being served", registry=self.registry
        )


def route_label(scope: Scope, status: int) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path is not None:
        return path or "/"
    return "unmatched" if status == 404 else scope.get("path", "")


class RequestObserver:
    """Wraps the app; counts, times and logs every HTTP request."""

    def __init__(self, app: Any, agent: str, metrics: Metrics) -> None:
        self.app, self.agent, self.metrics = app, agent, metrics

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            duration = time.perf_counter() - start
            self.metrics.in_flight.dec()
            route = route_label(scope, status)
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(route).observe(duration)
            if status >= 500:
                self.metrics.errors.labels(route).inc()
            log.info(
                "request",
                extra={
                    "agent": self.agent,
                    "method": scope["method"],
                    "route": route,
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(duration * 1000, 3),
                },
            )
