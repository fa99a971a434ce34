"""What the ext_authz app and the proxy share: header scanning, the decision with its metrics and
log line, the gateway's own routes, lifespan.

These are plain ASGI apps rather than FastAPI/Starlette routes on purpose: every request to every
agent runs through here, and routing plus dependency injection would cost more than the decision
itself (scripts/bench_gateway.py measures the difference). Requests whose Host names no agent may
reach the gateway's own `/metrics`, `/healthz` and `/readyz`; every other one is a decision.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from itertools import chain
from typing import Any

from gateway import metrics
from gateway.decision import Authorizer, Decision, deny
from gateway.settings import GatewaySettings
from runtime import telemetry
from runtime.problem import MEDIA_TYPE
from runtime.tracecontext import TraceContext, continue_or_start, extract_raw, reset_current, set_current

log = logging.getLogger("gateway.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = (b"content-type", b"application/json")
_PROBLEM = (b"content-type", MEDIA_TYPE.encode())


class RequestHeaders:
    """The few headers a decision reads. One C-level `dict()` over the ASGI list; a request that
    repeats a header we read (two Hosts, two Authorizations) is ambiguous and gets no value at all,
    so it cannot smuggle a second credential past the first."""

    __slots__ = (
        "authorization",
        "client",
        "content_length",
        "host",
        "partial_body",
        "request_id",
        "size",
        "trace",
        "traceparent",
        "transfer_encoding",
    )

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        found = dict(raw)
        if len(found) != len(raw):
            for name in _duplicated(raw):
                found[name] = b"\x00" if name in _READ else found[name]
        value = found.get(b"host")
        self.host = value.decode("latin-1") if value is not None else None
        value = found.get(b"authorization")
        self.authorization = value.decode("latin-1") if value is not None else None
        value = found.get(b"content-length")
        self.content_length = value.decode("latin-1") if value is not None else None
        value = found.get(b"x-request-id")
        self.request_id = value.decode("latin-1") if value is not None else None
        self.traceparent = found.get(b"traceparent")  # bytes, or b"\x00" when repeated (then invalid)
        value = found.get(b"transfer-encoding")
        self.transfer_encoding = value.decode("latin-1") if value is not None else None
        # Set by Envoy on ext_authz check requests: Kourier's fixed `client: kourier`, and whether
        # the body it forwards is only the first part of the client's (with_request_body).
        value = found.get(b"client")
        self.client = value.decode("latin-1") if value is not None else None
        value = found.get(b"x-envoy-auth-partial-body")
        self.partial_body = value.decode("latin-1") if value is not None else None
        self.size = len(b"".join(chain.from_iterable(raw))) + 4 * len(raw)
        self.trace: TraceContext | None = None  # the gateway's own hop, set by GatewayApp.handle


_READ = frozenset(
    {
        b"host",
        b"authorization",
        b"content-length",
        b"x-request-id",
        b"transfer-encoding",
        b"client",
        b"x-envoy-auth-partial-body",
        b"traceparent",
    }
)


def _duplicated(raw: list[tuple[bytes, bytes]]) -> set[bytes]:
    names = [name for name, _ in raw]
    return {name for name in names if names.count(name) > 1}


async def deny_with(send: Send, decision: Decision, headers: Sequence[tuple[bytes, bytes]]) -> None:
    """Answer a denial (or an upstream failure) with its problem+json body."""
    await respond(send, decision.status, decision.body(), headers, _PROBLEM)


async def respond(
    send: Send,
    status: int,
    body: bytes,
    headers: Sequence[tuple[bytes, bytes]] = (),
    content_type: tuple[bytes, bytes] = _JSON,
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [content_type, (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


def has_dot_segment(path: str) -> bool:
    """`.` or `..` as a segment of the (percent-decoded) path, or a dot still encoded after that
    decoding (double encoding): never part of a legitimate check."""
    if "." in path and any(segment in (".", "..") for segment in path.split("/")):
        return True
    return "%" in path and "%2e" in path.lower()


class GatewayApp:
    """Base ASGI app: subclasses implement `forward` for an allowed (or denied) decision."""

    def __init__(self, settings: GatewaySettings, authorizer: Authorizer, closers=()) -> None:
        self.settings = settings
        self.authorizer = authorizer
        self.max_header_bytes = settings.max_header_bytes
        self._closers = list(closers)
        self._tracer = telemetry.tracer("gateway", "gateway")  # None without an OTLP exporter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.handle(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":  # not proxied: closing before accepting refuses the handshake (403)
            await receive()
            await send({"type": "websocket.close", "code": 1008})

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._tracer is not None:
            await self._handle_traced(scope, receive, send)
            return
        headers = RequestHeaders(scope["headers"])
        # W3C Trace Context: the caller's trace continued under this hop's span id, or a new one.
        # (the full scan for tracestate/baggage only when a traceparent came: RequestHeaders read it)
        raw = scope["headers"]
        incoming = extract_raw(raw) if headers.traceparent is not None else None
        headers.trace = continue_or_start(incoming, self.settings.trace_sample_ratio)
        await self._handle(scope, receive, send, headers)

    async def _handle_traced(self, scope: Scope, receive: Receive, send: Send) -> None:
        """`handle` inside an OpenTelemetry server span (semantic conventions for HTTP), whose id
        is the hop's span id; the decision (authn, authz, rate limit) is a child span."""
        headers = RequestHeaders(scope["headers"])
        incoming = extract_raw(scope["headers"])
        method = scope["method"]
        span = telemetry.start(self._tracer, method, incoming, "SERVER", {
            "http.request.method": method, "url.path": scope["path"],
            "url.scheme": scope.get("scheme", "http"),
            "server.address": (headers.host or "").rsplit(":", 1)[0],
            "par.gateway.mode": self.settings.mode,
        })
        headers.trace = telemetry.context_of(span, incoming)
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        token = set_current(headers.trace)  # what the activator's spans (par up) take as parent
        try:
            await self._handle(scope, receive, send_status, headers)
        finally:
            reset_current(token)
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                from opentelemetry.trace import StatusCode

                span.set_status(StatusCode.ERROR)
                span.set_attribute("error.type", str(status))
            span.end()

    async def _handle(self, scope: Scope, receive: Receive, send: Send, headers: RequestHeaders) -> None:
        started = time.perf_counter()
        if headers.size > self.max_header_bytes:
            decision = deny(431, "headers_too_large", f"request headers over {self.max_header_bytes} bytes")
        elif self.authorizer.hosts.resolve(headers.host or "") is None and scope["method"] in ("GET", "HEAD"):
            if await self._own_route(scope, send):
                return
            decision = deny(404, "unknown_host", "no agent is served at this host")
        elif self._tracer is not None:
            decision = await self._decide_traced(scope, headers)
        else:
            decision = await self.decide(scope, headers)
        elapsed = time.perf_counter() - started
        metrics.DECISIONS.record(decision.allowed, decision.reason, elapsed)
        if not decision.allowed:
            log.info("denied", extra=self._log_fields(scope, headers, decision, elapsed))
        elif log.isEnabledFor(logging.DEBUG):
            log.debug("allowed", extra=self._log_fields(scope, headers, decision, elapsed))
        await self.forward(scope, receive, send, headers, decision)

    async def _decide_traced(self, scope: Scope, headers: RequestHeaders) -> Decision:
        span = telemetry.start(self._tracer, "authorize", headers.trace)
        try:
            decision = await self.decide(scope, headers)
        except BaseException:
            span.end()
            raise
        attributes = {
            "par.decision.allowed": decision.allowed,
            "par.decision.reason": decision.reason,  # e.g. ok, missing_credentials, forbidden, rate_limited
            "par.decision.status": decision.status,
            "par.tenant": decision.tenant,
            "par.key_id": decision.key_id,  # the key's id, never the key
            "par.ratelimit.limited": decision.status == 429,
        }
        if decision.target is not None:
            attributes["par.agent"] = str(decision.target)
        span.set_attributes({k: v for k, v in attributes.items() if v is not None})
        span.end()
        return decision

    async def decide(self, scope: Scope, headers: RequestHeaders) -> Decision:
        """The decision, with internal errors turned into a deny (or an allow if `fail_open`)."""
        try:
            return await self.authorizer.decide(
                headers.host or "", headers.authorization, headers.content_length
            )
        except Exception:
            log.exception("decision failed", extra={"fail_open": self.settings.fail_open})
            if self.settings.fail_open:
                return Decision(200, "internal_error")
            return deny(503, "internal_error", "the gateway could not decide; denied")

    async def forward(
        self, scope: Scope, receive: Receive, send: Send, headers: RequestHeaders, decision: Decision
    ) -> None:
        raise NotImplementedError

    @staticmethod
    def _log_fields(scope: Scope, headers: RequestHeaders, decision: Decision, elapsed: float) -> dict:
        client = scope.get("client")
        return {
            "status": decision.status,
            "reason": decision.reason,
            "method": scope["method"],
            "path": scope["path"],
            "host": headers.host,
            "target": str(decision.target) if decision.target else None,
            "tenant": decision.tenant,
            "key_id": decision.key_id,
            "client": client[0] if client else None,
            "request_id": headers.request_id,
            "decision_ms": round(elapsed * 1000, 3),
        }

    async def _own_route(self, scope: Scope, send: Send) -> bool:
        path = scope["path"]
        if path == "/metrics":
            body, content_type = metrics.render()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", content_type.encode()),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
        elif path == "/healthz":
            await respond(send, 200, b'{"status":"ok"}')
        elif path == "/readyz":
            problem = self.authorizer.policy.problem
            state = {"ready": problem is None, **({"reason": problem} if problem else {})}
            await respond(send, 503 if problem else 200, json.dumps(state).encode())
        elif self._console_here(path):  # the local ingress's URL is the one people know: point on
            query = scope.get("query_string", b"")
            where = f"{str(self.settings.registry_url).rstrip('/')}{path}".encode()
            where += b"?" + query if query else b""
            await respond(send, 307, b"", [(b"location", where)], (b"content-type", b"text/plain"))
        else:
            return False
        return True

    def _console_here(self, path: str) -> bool:
        """`/console` on the proxy's own host redirects to the registry's console (par up)."""
        return (
            self.settings.mode == "proxy"
            and self.settings.registry_url is not None
            and (path == "/console" or path.startswith("/console/"))
        )

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("gateway failed to start")
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        await self.authorizer.policy.start()
        await self.authorizer.jwt.start()
        problem = self.authorizer.policy.problem
        if problem is None:
            log.info("gateway ready", extra={"mode": self.settings.mode})
        else:  # serving, denying every request until the policy arrives: say why, once
            log.warning("gateway not ready: " + problem, extra={"mode": self.settings.mode})

    async def shutdown(self) -> None:
        await self.authorizer.policy.stop()
        await self.authorizer.jwt.stop()
        await self.authorizer.limiter.close()
        for close in self._closers:
            await close()
