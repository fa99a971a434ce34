"""One HTTP exchange streamed to an agent: the platform's one forwarder.

Both ways in to an agent on one machine use it: the gateway proxy (after its decision) and the
serving component's local gateway (event deliveries, no key). The forwarder asks a `Resolver`
for the upstream and holds it for the whole exchange (scale from zero, queueing and in-flight
counting happen there), streams the request body with a cap (413) and the response back as it
comes, drops hop-by-hop headers both ways (RFC 9110 section 7.6.1, and those that `Connection`
names), and maps failures: unknown agent 404, agent down or unreachable 502, too slow 504.

The upstream client is aiohttp rather than httpx: with 32 requests in flight on one pool, httpx
managed 76-120 req/s against an agent that answers 2,000+ (encode/httpx#3215: its pool re-checks
every connection per request), aiohttp 1,000-1,500 on the same machine in the same run.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Sequence

import aiohttp
import yarl
from multidict import CIMultiDict

from gateway.asgi import Receive, Scope, Send, deny_with
from gateway.decision import Decision, body_too_large, deny
from gateway.hosts import Target
from gateway.resolver import AgentUnavailable, Resolver, UnknownAgent

log = logging.getLogger("gateway.forward")

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


class BodyTooLarge(Exception):
    pass


def drop_hop_by_hop(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The headers minus hop-by-hop ones, including those the `Connection` header names."""
    raw = list(raw)
    dropped = HOP_BY_HOP
    connection = [value for name, value in raw if name.lower() == b"connection"]
    if connection:
        dropped = HOP_BY_HOP | {t.strip().lower() for value in connection for t in value.split(b",")}
    return [(n, v) for n, v in raw if n.lower() not in dropped]


def upstream_url(base: str, raw_path: str, query: str) -> yarl.URL:
    """The caller's path and query exactly as sent (no re-encoding) on the upstream's base."""
    return yarl.URL(base.rstrip("/") + raw_path + (f"?{query}" if query else ""), encoded=True)


class Forwarder:
    """An aiohttp session (made in `start`, on the serving loop) and the streaming exchange."""

    def __init__(
        self, *, max_body_bytes: int, max_connections: int, connect_timeout: float, read_timeout: float
    ) -> None:
        self.max_body_bytes = max_body_bytes
        self._connector_limit = max_connections
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._connector_limit, use_dns_cache=True),
            timeout=self._timeout,
            auto_decompress=False,  # bytes pass through as the agent sent them
            # Never keep an agent's Set-Cookie: a session-wide jar would replay one caller's cookies
            # on every other caller's requests.
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        )

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def exchange(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        resolver: Resolver,
        target: Target,
        path: str,
        headers: CIMultiDict[str],
        reply_headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> int:
        """Forward one request to `target` at `path` (raw, as sent); returns the status the client
        got. A failure before the response started is answered here with the error's status."""
        assert self.session is not None, "Forwarder.start() was not awaited"
        response_started = False
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
                if seen > self.max_body_bytes:
                    too_large = True
                    raise BodyTooLarge()
                if chunk:
                    yield chunk
                if not message.get("more_body", False):
                    return

        failure: Decision
        try:
            async with resolver.acquire(target.namespace, target.agent, target.tag) as base:
                query = (scope.get("query_string") or b"").decode("latin-1")
                async with self.session.request(
                    scope["method"],
                    upstream_url(base, path, query),
                    headers=headers,
                    data=body() if _has_body(scope["headers"]) else None,
                    allow_redirects=False,
                ) as response:
                    await send(
                        {
                            "type": "http.response.start",
                            "status": response.status,
                            "headers": drop_hop_by_hop(response.raw_headers) + list(reply_headers),
                        }
                    )
                    response_started = True
                    async for chunk in response.content.iter_any():
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    await send({"type": "http.response.body", "body": b""})
                    return response.status
        except UnknownAgent as exc:
            failure = deny(404, "unknown_agent", str(exc), target)
        except AgentUnavailable as exc:
            failure = deny(502, "agent_unavailable", str(exc), target)
        except Exception as exc:
            if response_started:
                log.warning(
                    "upstream broke off mid-response", extra={"target": str(target), "error": repr(exc)}
                )
                raise
            if too_large or isinstance(exc, BodyTooLarge):
                failure = body_too_large(self.max_body_bytes)
            elif isinstance(exc, TimeoutError):
                failure = deny(504, "upstream_timeout", "the agent did not answer in time", target)
            elif isinstance(exc, aiohttp.ClientError | OSError):
                failure = deny(502, "upstream_unreachable", "the agent could not be reached", target)
            else:
                raise
        log.info("upstream failure", extra={"status": failure.status, "reason": failure.reason,
                                            "target": str(target)})
        await deny_with(send, failure, reply_headers)
        return failure.status


def _has_body(raw: Iterable[tuple[bytes, bytes]]) -> bool:
    for name, value in raw:
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return True
    return False
