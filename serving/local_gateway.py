"""The local gateway: `http://127.0.0.1:{port}/{namespace}/{agent}/{path}`, no key.

Knative has a cluster-local gateway through which platform parts reach a Service without the
public ingress; this is its one-machine twin. The eventing dispatcher delivers triggers here
(`PAR_EVENTING_SERVICE_URL_TEMPLATE` = `http://127.0.0.1:{port}/{namespace}/{name}`), so an event
wakes an agent from zero exactly as a request through the gateway does: the same activator
holds it and the same forwarder (`gateway.forward`) streams it. Loopback only, no
authentication. `GET /metrics` serves the platform's Prometheus metrics and `GET /status` every
agent's instances (pid, port, state, in flight) as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from multidict import CIMultiDict
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.asgi import Receive, Scope, Send
from gateway.forward import Forwarder, drop_hop_by_hop
from gateway.hosts import Target
from gateway.resolver import Resolver
from runtime import telemetry, tracecontext

from .metrics import ACTIVATIONS
from .types import ServiceStatus

_NOT_PASSED = frozenset({b"host"})  # the upstream's own


class LocalGateway:
    """ASGI app forwarding path-routed requests through a `Resolver` (the activator)."""

    def __init__(
        self,
        resolver: Resolver,
        statuses: Callable[[], Sequence[ServiceStatus]] = list,
        timeout: float = 300.0,
        max_body_bytes: int = 10 * 1024 * 1024,
    ) -> None:
        self.resolver = resolver
        self.statuses = statuses
        self.forwarder = Forwarder(
            max_body_bytes=max_body_bytes, max_connections=100, connect_timeout=5.0, read_timeout=timeout
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        parts = scope["path"].lstrip("/").split("/", 2)
        if parts == ["metrics"]:
            await _reply(send, 200, generate_latest(), CONTENT_TYPE_LATEST.encode())
            return
        if parts == ["status"]:
            body = json.dumps([s.as_json() for s in self.statuses()]).encode()
            await _reply(send, 200, body, b"application/json")
            return
        if len(parts) < 2 or not all(parts[:2]):
            await _reply(send, 404, b"use /{namespace}/{agent}/{path}\n")
            return
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        raw_parts = raw_path.lstrip("/").split("/", 2)
        path = "/" + (raw_parts[2] if len(raw_parts) > 2 else "")
        headers = CIMultiDict(
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in drop_hop_by_hop(scope["headers"])
            if name not in _NOT_PASSED
        )
        traced = telemetry.tracer("serving") is not None  # the activator's spans join the delivery's trace
        token = tracecontext.set_current(tracecontext.extract_raw(scope["headers"])) if traced else None
        try:
            status = await self.forwarder.exchange(
                scope, receive, send, self.resolver, Target(parts[0], parts[1]), path, headers
            )
        finally:
            if token is not None:
                tracecontext.reset_current(token)
        ACTIVATIONS.labels(str(status)).inc()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.forwarder.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.forwarder.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _reply(send: Send, status: int, body: bytes, content_type: bytes = b"text/plain") -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
