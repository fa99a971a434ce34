"""The local ingress: the same decision as ext_authz, then the request streamed to the agent.

Bodies are streamed both ways (aiohttp on the upstream side; nothing is buffered whole), the request
body is capped (413), hop-by-hop headers are dropped, `X-Forwarded-For/-Proto/-Host` and a request
id are added, and the caller's own `x-par-*` headers are replaced by the decision's. A PAR API key
is not passed on (it is the caller's secret for the platform); other credentials are.
Unknown agent 404, agent down or unreachable 502, agent too slow 504.

The upstream client is aiohttp rather than httpx: with 32 requests in flight on one pool, httpx
managed 76-120 req/s against an agent that answers 2,000+ (encode/httpx#3215: its pool re-checks
every connection per request), aiohttp 1,000-1,500 on the same machine in the same run.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import AsyncIterator

import aiohttp
import yarl
from multidict import CIMultiDict

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
    }
)
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")


class BodyTooLarge(Exception):
    pass


def _drop_hop_by_hop(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Also drops the headers the `Connection` header names (RFC 9110 section 7.6.1)."""
    dropped = HOP_BY_HOP
    connection = [value for name, value in raw if name.lower() == b"connection"]
    if connection:
        dropped = HOP_BY_HOP | {t.strip().lower() for value in connection for t in value.split(b",")}
    return [(n, v) for n, v in raw if n.lower() not in dropped]


class ProxyApp(GatewayApp):
    def __init__(self, settings: GatewaySettings, authorizer: Authorizer, resolver: Resolver) -> None:
        super().__init__(settings, authorizer)
        self.resolver = resolver
        self.session: aiohttp.ClientSession | None = None

    async def startup(self) -> None:
        # aiohttp sessions belong to the running loop, so the session is made here, not in __init__.
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.settings.upstream_max_connections, use_dns_cache=True),
            timeout=aiohttp.ClientTimeout(
                total=None,
                sock_connect=self.settings.upstream_connect_timeout,
                sock_read=self.settings.upstream_timeout,
            ),
            auto_decompress=False,  # bytes pass through as the agent sent them
            # Never keep an agent's Set-Cookie: a session-wide jar would replay one caller's cookies
            # on every other caller's requests.
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        )
        await super().startup()

    async def shutdown(self) -> None:
        await super().shutdown()
        if self.session is not None:
            await self.session.close()

    async def forward(
        self, scope: Scope, receive: Receive, send: Send, headers: RequestHeaders, decision: Decision
    ) -> None:
        request_id = headers.request_id
        if request_id is None or not _REQUEST_ID_RE.fullmatch(request_id):
            request_id = os.urandom(16).hex()
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
        metrics.observe_proxied(status, elapsed)
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
        assert decision.target is not None and self.session is not None
        response_started = False
        reply_headers = [(b"x-request-id", request_id.encode()), *decision.headers]
        too_large = False

        async def body() -> AsyncIterator[bytes]:
            nonlocal too_large
            seen = 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ConnectionResetError("client disconnected")
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
                async with self.session.request(
                    scope["method"],
                    self._url(base, scope),
                    headers=self._upstream_headers(scope, headers, decision, request_id),
                    data=body() if has_body else None,
                    allow_redirects=False,
                ) as response:
                    await send(
                        {
                            "type": "http.response.start",
                            "status": response.status,
                            "headers": _drop_hop_by_hop(list(response.raw_headers)) + reply_headers,
                        }
                    )
                    response_started = True
                    async for chunk in response.content.iter_any():
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    await send({"type": "http.response.body", "body": b""})
                    return response.status
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
            elif isinstance(exc, TimeoutError):
                failure = deny(504, "upstream_timeout", "the agent did not answer in time", decision.target)
            elif isinstance(exc, aiohttp.ClientError | OSError):
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
    def _url(base: str, scope: Scope) -> yarl.URL:
        """The caller's path and query exactly as sent (no re-encoding) on the upstream's base."""
        path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        query = (scope.get("query_string") or b"").decode("latin-1")
        return yarl.URL(base.rstrip("/") + path + (f"?{query}" if query else ""), encoded=True)

    @staticmethod
    def _upstream_headers(
        scope: Scope, headers: RequestHeaders, decision: Decision, request_id: str
    ) -> CIMultiDict[str]:
        out = CIMultiDict(
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in _drop_hop_by_hop(scope["headers"])
            if name not in _REPLACED
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
