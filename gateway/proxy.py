"""The local ingress: the same decision as ext_authz, then the request streamed to the agent.

The exchange itself (streaming, body cap, hop-by-hop headers, 404/413/502/504) is
`gateway.forward`; here `X-Forwarded-For/-Proto/-Host` and a request id are added, and the
caller's own `x-par-*` headers are replaced by the decision's. A PAR API key is not passed on
(it is the caller's secret for the platform); other credentials are.
"""

from __future__ import annotations

import logging
import os
import re
import time

from multidict import CIMultiDict

from gateway import metrics
from gateway.apikeys import PREFIX
from gateway.asgi import GatewayApp, Receive, RequestHeaders, Scope, Send, deny_with
from gateway.decision import Authorizer, Decision
from gateway.feed import PolicySource, policy_source_from
from gateway.forward import Forwarder, drop_hop_by_hop
from gateway.ratelimit import RateLimiter, limiter_from
from gateway.resolver import Resolver, StaticResolver
from gateway.settings import GatewaySettings

log = logging.getLogger("gateway.proxy")

# Replaced by the gateway rather than passed on from the caller (`expect: 100-continue` was
# already answered to the caller by the server in front of this app).
_REPLACED = frozenset(
    {
        b"host",
        b"expect",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-request-id",
        b"x-par-tenant",
        b"x-par-key-id",
        b"traceparent",
    }
)
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")


class ProxyApp(GatewayApp):
    def __init__(self, settings: GatewaySettings, authorizer: Authorizer, resolver: Resolver) -> None:
        super().__init__(settings, authorizer)
        self.resolver = resolver
        self.forwarder = Forwarder(
            max_body_bytes=settings.max_body_bytes,
            max_connections=settings.upstream_max_connections,
            connect_timeout=settings.upstream_connect_timeout,
            read_timeout=settings.upstream_timeout,
        )

    async def startup(self) -> None:
        await self.forwarder.start()  # aiohttp sessions belong to the running loop
        await super().startup()

    async def shutdown(self) -> None:
        await super().shutdown()
        await self.forwarder.close()

    async def forward(
        self, scope: Scope, receive: Receive, send: Send, headers: RequestHeaders, decision: Decision
    ) -> None:
        request_id = headers.request_id
        if request_id is None or not _REQUEST_ID_RE.fullmatch(request_id):
            request_id = os.urandom(16).hex()
        reply_headers = [*decision.headers, (b"x-request-id", request_id.encode())]
        if not decision.allowed:
            assert headers.trace is not None
            trace = (b"traceparent", headers.trace.traceparent.encode())
            await deny_with(send, decision, [*reply_headers, trace])
            return
        assert decision.target is not None
        started = time.perf_counter()
        status = await self.forwarder.exchange(
            scope, receive, send, self.resolver, decision.target,
            (scope.get("raw_path") or scope["path"].encode()).decode("latin-1"),
            self._upstream_headers(scope, headers, decision, request_id),
            reply_headers,
        )
        elapsed = time.perf_counter() - started
        metrics.observe_proxied(status, elapsed)
        metrics.AGENT_REQUESTS.record(decision.target.namespace, decision.target.agent, status, elapsed)
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

    @staticmethod
    def _upstream_headers(
        scope: Scope, headers: RequestHeaders, decision: Decision, request_id: str
    ) -> CIMultiDict[str]:
        trace = headers.trace
        assert trace is not None
        out = CIMultiDict(
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in drop_hop_by_hop(scope["headers"])
            if name not in _REPLACED
            # a new trace (no valid traceparent came) drops the caller's tracestate (W3C)
            and not (name == b"tracestate" and trace.tracestate is None)
            and not (name == b"authorization" and value[7:].lstrip().startswith(PREFIX.encode()))
        )
        client = scope.get("client")
        prior = [value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for"]
        out["X-Forwarded-For"] = ", ".join([*prior, client[0] if client else "unknown"])
        out["X-Forwarded-Proto"] = scope.get("scheme", "http")
        out["X-Forwarded-Host"] = headers.host or ""
        out["X-Request-Id"] = request_id
        out["X-Par-Tenant"] = decision.tenant
        out["X-Par-Key-Id"] = decision.key_id
        out["traceparent"] = trace.traceparent  # this hop's span: the agent's parent
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
        resolver = StaticResolver({tuple(k.split("/", 1)): v for k, v in settings.upstreams.items()})  # type: ignore[misc]
    authorizer = Authorizer(
        settings, policy or policy_source_from(settings), limiter or limiter_from(settings)
    )
    return ProxyApp(settings, authorizer, resolver)
