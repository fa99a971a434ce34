"""The local gRPC way in: `pixell.agent.AgentService` for every agent on this machine, one port.

The one-machine twin of the `{agent}-grpc` Knative Service (registry/knative/grpc_variant.py). A caller
of the original runtime's gRPC service dials this port and names the agent in the metadata key
`x-par-agent` (`agent`, or `namespace/agent`; the namespace defaults to `default`). Each call is
held by the activator like any request (scale from zero included) and passed, as protobuf over
HTTP, to the instance's `POST /pixell.agent.AgentService/{method}` (runtime.agent_service): an
instance needs no second port, and its confinement is unchanged. Loopback only and keyless, as
the local gateway is.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
import httpx

from gateway.resolver import AgentUnavailable, Resolver, UnknownAgent
from runtime import tracecontext

log = logging.getLogger("serving.grpc")

SERVICE = "pixell.agent.AgentService"
METHODS = ("Health", "DescribeCapabilities", "Invoke", "Ping")
AGENT_KEY = "x-par-agent"
DEFAULT_NAMESPACE = "default"


class GrpcFront:
    """A grpcio server relaying the service's unary calls to the agents' instances."""

    def __init__(self, resolver: Resolver, timeout: float = 300.0) -> None:
        self.resolver, self.timeout = resolver, timeout
        self._client = httpx.AsyncClient(timeout=timeout)
        self._server: grpc.aio.Server | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen; returns the port (a free one when `port` is 0)."""
        server = grpc.aio.server()
        handlers = {name: grpc.unary_unary_rpc_method_handler(self._relay(name)) for name in METHODS}
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        bound = server.add_insecure_port(f"{host}:{port}")
        await server.start()
        self._server = server
        log.info("grpc front serving", extra={"port": bound})
        return bound

    async def stop(self, grace: float = 5.0) -> None:
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        await self._client.aclose()

    def _relay(self, method: str) -> Any:
        """One method relayed; the call's W3C trace context (metadata) continues on the HTTP hop."""
        async def relay(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            metadata = {key: value for key, value in context.invocation_metadata() or ()}
            named = str(metadata.get(AGENT_KEY, "")).strip()
            if not named:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"set the {AGENT_KEY} metadata")
            namespace, _, agent = named.rpartition("/")
            try:
                async with self.resolver.acquire(namespace or DEFAULT_NAMESPACE, agent) as upstream:
                    response = await self._client.post(
                        f"{upstream}/{SERVICE}/{method}",
                        content=request,
                        headers={"content-type": "application/x-protobuf", **trace_headers(metadata)},
                    )
            except UnknownAgent:
                await context.abort(grpc.StatusCode.NOT_FOUND, f"no agent {named!r}")
            except AgentUnavailable as exc:
                await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
            except httpx.HTTPError as exc:
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"{named}: {type(exc).__name__}: {exc}")
            if response.status_code in (404, 405):
                await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{named} offers no {SERVICE} (no a2a)")
            if response.status_code != 200:
                await context.abort(grpc.StatusCode.INTERNAL, f"{named}: HTTP {response.status_code}")
            return response.content

        return relay


def trace_headers(metadata: dict[str, Any]) -> dict[str, str]:
    """`traceparent`/`tracestate`/`baggage` continuing a gRPC call's trace under this hop's span id."""
    incoming = tracecontext.extract({k: v for k, v in metadata.items() if isinstance(v, str)})
    return incoming.child().headers() if incoming is not None else {}
