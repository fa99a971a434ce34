"""The internal activator listener: `http://127.0.0.1:{port}/{namespace}/{agent}/{path}`.

Loopback only and without authentication, it is how platform parts reach an agent without a
key: the eventing dispatcher delivers triggers here (`PAR_EVENTING_SERVICE_URL_TEMPLATE`
= `http://127.0.0.1:{port}/{namespace}/{name}`), so an event wakes an agent from zero exactly as
a request through the gateway does. `GET /metrics` serves the platform's Prometheus metrics and
`GET /status` every agent's instances (pid, port, state, in flight) as JSON.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.resolver import AgentUnavailable, Resolver, UnknownAgent

from .metrics import ACTIVATIONS

log = logging.getLogger("par.local.activator")

_DROP = frozenset({b"host", b"connection", b"keep-alive", b"transfer-encoding", b"te", b"upgrade",
                   b"content-length", b"proxy-connection", b"trailer"})


class Activator:
    """ASGI app forwarding path-routed requests through a `Resolver`."""

    def __init__(
        self, resolver: Resolver, status: Callable[[], Any] = list, timeout: float = 300.0
    ) -> None:
        self.resolver = resolver
        self.status = status
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=5.0), trust_env=False)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
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
            await _reply(send, 200, json.dumps(self.status()).encode(), b"application/json")
            return
        if len(parts) < 2 or not all(parts[:2]):
            await _reply(send, 404, b"use /{namespace}/{agent}/{path}\n")
            return
        namespace, agent = parts[0], parts[1]
        path = "/" + (parts[2] if len(parts) > 2 else "")
        query = scope.get("query_string", b"").decode("latin-1")
        body = await _read_body(receive)
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _DROP]
        status = 502
        try:
            async with self.resolver.acquire(namespace, agent) as base:
                url = f"{base}{path}?{query}" if query else f"{base}{path}"
                response = await self.client.request(scope["method"], url, headers=headers, content=body)
                status = response.status_code
                out = [(k, v) for k, v in response.headers.raw if k.lower() not in _DROP]
                await send({"type": "http.response.start", "status": status, "headers": out})
                await send({"type": "http.response.body", "body": response.content})
        except UnknownAgent as exc:
            status = 404
            await _reply(send, status, f"{exc}\n".encode())
        except (AgentUnavailable, httpx.HTTPError) as exc:
            status = 502
            log.warning("activation failed", extra={"target": f"{namespace}/{agent}", "error": str(exc)})
            await _reply(send, status, f"{exc}\n".encode())
        ACTIVATIONS.labels(str(status)).inc()

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _read_body(receive: Any) -> bytes:
    """Whole request body: deliveries are CloudEvents, small, and may be retried."""
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _reply(send: Any, status: int, body: bytes, content_type: bytes = b"text/plain") -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
