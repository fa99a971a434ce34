"""The local ingress: the same decision as ext_authz, then the request streamed to the agent.

Bodies are streamed both ways (httpx on the upstream side; nothing is buffered whole), the request
body is capped (413), hop-by-hop headers are dropped, `X-Forwarded-For/-Proto/-Host` and a request
id are added, and the caller's own `x-par-*` headers are replaced by the decision's. A PAR API key
is not passed on (it is the caller's secret for the platform); other credentials are.
Unknown agent 404, agent down or unreachable 502, agent too slow 504.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import AsyncIterator

import httpx

from gateway import metrics
from gateway.apikeys import PREFIX
from gateway.asgi import GatewayApp, Receive, RequestHeaders, Scope, Send, respond
from gateway.decision import Authorizer, Decision, deny
from gateway.feed import PolicySource, policy_source_from
from gateway.ratelimit import RateLimiter, limiter_from
from gateway.resolver import AgentUnavailable, Resolver, StaticResolver, UnknownAgent
from gateway.settings import GatewaySettings

log = logging.getLogger("gateway.proxy")

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Replaced by the gateway rather than passed on from the caller.
_REPLACED = frozenset(
    {
        b"host",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-request-id",
        b"x-par-tenant",
        b"x-par-key-id",
    }
)
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")


class BodyTooLarge(Exception):
    pass


def _drop_hop_by_hop(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Also drops the headers the `Connection` header names (RFC 9110 section 7.6.1)."""
    named = {
        token.strip().lower()
        for name, value in raw
        if name.lower() == b"connection"
        for token in value.split(b",")
    }
    return [(n, v) for n, v in raw if n.lower() not in HOP_BY_HOP and n.lower() not in named]


class ProxyApp(GatewayApp):
    def __init__(
        self, settings: GatewaySettings, authorizer: Authorizer, resolver: Resolver, client: httpx.AsyncClient
    ) -> None:
        super().__init__(settings, authorizer, closers=[client.aclose])
        self.resolver = resolver
        self.client = client

    async def forward(
        self, scope: Scope, receive: Receive, send: Send, headers: RequestHeaders, decision: Decision
    ) -> None:
        request_id = headers.request_id
        if request_id is None or not _REQUEST_ID_RE.fullmatch(request_id):
            request_id = uuid.uuid4().hex
        if not decision.allowed:
            await respond(
                send,
                decision.status,
                decision.body(),
                [*decision.headers, (b"x-request-id", request_id.encode())],
            )
            return
        started = time.perf_counter()
        status = await self._exchange(scope, receive, send, headers, decision, request_id)
        elapsed = time.perf_counter() - started
        metrics.PROXY_SECONDS.labels(f"{status // 100}xx").observe(elapsed)
        log.info(
            "proxied",
            extra={
                "status": status,
                "method": scope["method"],
                "path": scope["path"],
                "target": str(decision.target),
                "tenant": decision.tenant,
                "key_id": decision.key_id,
                "request_id": request_id,
                "ms": round(elapsed * 1000, 3),
            },
        )

    async def _exchange(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: RequestHeaders,
        decision: Decision,
        request_id: str,
    ) -> int:
        """Forward one request; returns the status the client got."""
        assert decision.target is not None
        response_started = False
        reply_headers = [(b"x-request-id", request_id.encode()), *decision.headers]
        too_large = False

        async def body() -> AsyncIterator[bytes]:
            nonlocal too_large
            seen = 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise httpx.ReadError("client disconnected")
                chunk = message.get("body", b"")
                seen += len(chunk)
                if seen > self.settings.max_body_bytes:
                    too_large = True
                    raise BodyTooLarge()
                if chunk:
                    yield chunk
                if not message.get("more_body", False):
                    return

        failure: Decision | None = None
        try:
            async with self.resolver.acquire(decision.target.namespace, decision.target.agent) as base:
                has_body = headers.transfer_encoding is not None or (headers.content_length or "0") != "0"
                request = self.client.build_request(
                    scope["method"],
                    self._url(base, scope),
                    headers=self._upstream_headers(scope, headers, decision, request_id),
                    content=body() if has_body else None,
                )
                response = await self.client.send(request, stream=True)
                try:
                    await send(
                        {
                            "type": "http.response.start",
                            "status": response.status_code,
                            "headers": _drop_hop_by_hop(response.headers.raw) + reply_headers,
                        }
                    )
                    response_started = True
                    async for chunk in response.aiter_raw():
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    await send({"type": "http.response.body", "body": b""})
                finally:
                    await response.aclose()
                return response.status_code
        except UnknownAgent as exc:
            failure = deny(404, "unknown_agent", str(exc), decision.target)
        except AgentUnavailable as exc:
            failure = deny(502, "agent_unavailable", str(exc), decision.target)
        except Exception as exc:
            if response_started:
                log.warning(
                    "upstream broke off mid-response", extra={"request_id": request_id, "error": repr(exc)}
                )
                raise
            if too_large or isinstance(exc, BodyTooLarge):
                failure = deny(
                    413, "body_too_large", f"request body over {self.settings.max_body_bytes} bytes"
                )
            elif isinstance(exc, httpx.TimeoutException):
                failure = deny(504, "upstream_timeout", "the agent did not answer in time", decision.target)
            elif isinstance(exc, httpx.TransportError):
                failure = deny(502, "upstream_unreachable", "the agent could not be reached", decision.target)
            else:
                raise
        log.info(
            "upstream failure",
            extra={"status": failure.status, "reason": failure.reason, "request_id": request_id},
        )
        await respond(send, failure.status, failure.body(), reply_headers)
        return failure.status

    @staticmethod
    def _url(base: str, scope: Scope) -> str:
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string") or b""
        url = base.rstrip("/") + path.decode("latin-1")
        return f"{url}?{query.decode('latin-1')}" if query else url

    @staticmethod
    def _upstream_headers(
        scope: Scope, headers: RequestHeaders, decision: Decision, request_id: str
    ) -> list[tuple[bytes, bytes]]:
        out = [
            (name, value)
            for name, value in _drop_hop_by_hop(scope["headers"])
            if name not in _REPLACED
            and not (name == b"authorization" and value[7:].lstrip().startswith(PREFIX.encode()))
        ]
        client = scope.get("client")
        client_ip = client[0] if client else "unknown"
        prior = [value for name, value in scope["headers"] if name == b"x-forwarded-for"]
        forwarded_for = b", ".join([*prior, client_ip.encode()])
        out += [
            (b"x-forwarded-for", forwarded_for),
            (b"x-forwarded-proto", scope.get("scheme", "http").encode()),
            (b"x-forwarded-host", (headers.host or "").encode()),
            (b"x-request-id", request_id.encode()),
            (b"x-par-tenant", decision.tenant.encode()),
            (b"x-par-key-id", decision.key_id.encode()),
        ]
        return out


def build_proxy_app(
    settings: GatewaySettings | None = None,
    policy: PolicySource | None = None,
    resolver: Resolver | None = None,
    limiter: RateLimiter | None = None,
) -> ProxyApp:
    """The proxy ASGI app. The one-machine platform passes its own `resolver` (and may pass a
    `StaticPolicy` it updates itself); by default upstreams come from `PAR_GATEWAY_UPSTREAMS`."""
    settings = settings or GatewaySettings()
    if resolver is None:
        resolver = StaticResolver({tuple(k.split("/", 1)): v for k, v in settings.upstreams.items()})
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(settings.upstream_timeout, connect=settings.upstream_connect_timeout),
        limits=httpx.Limits(
            max_connections=settings.upstream_max_connections,
            max_keepalive_connections=settings.upstream_max_connections,
        ),
        follow_redirects=False,
        trust_env=False,
    )
    authorizer = Authorizer(
        settings, policy or policy_source_from(settings), limiter or limiter_from(settings)
    )
    return ProxyApp(settings, authorizer, resolver, client)
