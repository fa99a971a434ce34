"""Per-request observability as plain ASGI middleware: Prometheus metrics and one JSON log line
(agent, method, route, status, duration). Routes are labelled by their template, never the raw
path, so metric cardinality stays bounded.

`ObservedRequests` (learn each response's status and duration) is shared with the other
components' servers, which record their own metrics and log fields in `finished`."""

from __future__ import annotations

import logging
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("runtime.request")


class ObservedRequests:
    """Pure ASGI middleware: wraps the app and hands every HTTP request's response status and
    duration to `finished` (500 when the app raised before answering)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def started(self, scope: Scope) -> None:
        """A request begins (e.g. count it in flight)."""

    def finished(self, scope: Scope, status: int, seconds: float) -> None:
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.started(scope)
        try:
            await self.app(scope, receive, send_status)
        finally:
            self.finished(scope, status, time.perf_counter() - start)


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


class RequestObserver(ObservedRequests):
    """Wraps the app; counts, times and logs every HTTP request."""

    def __init__(self, app: ASGIApp, agent: str, metrics: Metrics) -> None:
        super().__init__(app)
        self.agent, self.metrics = agent, metrics
        # Label children per (method, route, status): `.labels()` takes a lock and builds its key
        # on every call. Routes are templates, so this holds no more than the registry does.
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}

    def started(self, scope: Scope) -> None:
        self.metrics.in_flight.inc()

    def _series(self, method: str, route: str, status: int) -> tuple[Any, Any, Any]:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            m = self.metrics
            children = (
                m.requests.labels(method, route, str(status)),
                m.latency.labels(route),
                m.errors.labels(route) if status >= 500 else None,
            )
            self._children[key] = children
        return children

    def finished(self, scope: Scope, status: int, seconds: float) -> None:
        self.metrics.in_flight.dec()
        route = route_label(scope, status)
        requests, latency, errors = self._series(scope["method"], route, status)
        requests.inc()
        latency.observe(seconds)
        if errors is not None:
            errors.inc()
        if log.isEnabledFor(logging.INFO):
            log.info(
                "request",
                extra={
                    "agent": self.agent,
                    "method": scope["method"],
                    "route": route,
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(seconds * 1000, 3),
                },
            )
