"""The original runtime's gRPC service, `pixell.agent.AgentService`, onto the package's a2a handlers.

The same handlers answer gRPC, A2A JSON-RPC and CloudEvents. The service is offered two ways:
- gRPC (grpcio) on `A2A_PORT` (default 50051) whenever the package has an `a2a` section; when
  A2A_PORT was not set and the port is taken (several runtimes on one machine), the runtime logs
  it and serves without gRPC; an explicit A2A_PORT that cannot be bound refuses to start. Under
  Knative (`K_SERVICE` set: a Knative Service, or `par up`'s instances) only an explicit A2A_PORT
  starts it, as only the `{agent}-grpc` variant routes to that port.
- each method over plain HTTP on the runtime's port, `POST /pixell.agent.AgentService/{Method}`
  with the serialized request as body (`application/x-protobuf`): how `par up` reaches an
  instance's service through the activator (serving's gRPC front) without a second port.

`Invoke` answers `success=false` with the reason for an unknown action or a failing handler; a
string result is returned as is, anything else as JSON (the original used Python's `str()`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message

from runtime import tracecontext
from runtime.agent import Agent
from runtime.invoke import HandlerFailed, call
from runtime.protos import agent_pb2, agent_pb2_grpc

log = logging.getLogger("runtime.grpc")

SERVICE = "pixell.agent.AgentService"
METHODS = ("Health", "DescribeCapabilities", "Invoke", "Ping")
MEDIA_TYPE = "application/x-protobuf"


def millis() -> int:
    return int(time.time() * 1000)


class AgentService(agent_pb2_grpc.AgentServiceServicer):
    """The four methods; used by the grpcio server and by the HTTP route alike."""

    def __init__(self, agent: Agent, time_limit: float) -> None:
        self.agent, self.time_limit = agent, time_limit

    async def Health(self, request: agent_pb2.Empty, context: Any = None) -> agent_pb2.HealthStatus:
        return agent_pb2.HealthStatus(ok=True, message="Agent is healthy", timestamp=millis())

    async def DescribeCapabilities(
        self, request: agent_pb2.Empty, context: Any = None
    ) -> agent_pb2.Capabilities:
        manifest = self.agent.prepared.manifest
        metadata = {
            "name": manifest.name,
            "version": manifest.version,
            "description": manifest.description or "",
            "actions": ",".join(self.actions()),
        }
        return agent_pb2.Capabilities(methods=list(METHODS), metadata=metadata)

    async def Ping(self, request: agent_pb2.Empty, context: Any = None) -> agent_pb2.Pong:
        return agent_pb2.Pong(message="pong", timestamp=millis())

    async def Invoke(self, request: agent_pb2.ActionRequest, context: Any = None) -> agent_pb2.ActionResult:
        if context is None or tracecontext.current() is not None:  # over HTTP: the app set it
            return await self._invoke(request)
        # over gRPC: the call's W3C trace context (metadata) is the handler's, as HTTP's is
        incoming = tracecontext.extract_metadata(context.invocation_metadata())
        token = tracecontext.set_current(tracecontext.continue_or_start(incoming))
        try:
            return await self._invoke(request)
        finally:
            tracecontext.reset_current(token)

    async def _invoke(self, request: agent_pb2.ActionRequest) -> agent_pb2.ActionResult:
        started = time.perf_counter()
        request_id = request.request_id or f"req_{millis()}"

        def answer(success: bool, result: str = "", error: str = "") -> agent_pb2.ActionResult:
            duration = int((time.perf_counter() - started) * 1000)
            return agent_pb2.ActionResult(
                success=success, result=result, error=error, request_id=request_id, duration_ms=duration
            )

        action, parameters = request.action, dict(request.parameters)
        if not action:
            return answer(False, error="No action specified in request")
        try:
            if action in self.agent.a2a_handlers:
                fn = self.agent.a2a_handlers[action]
                result = await call(fn, parameters, time_limit=self.time_limit, what=f"a2a {action}")
            elif action in self.agent.a2a_streams:
                result = [chunk async for chunk in self.agent.a2a_streams[action](parameters)]
            else:
                available = ", ".join(self.actions()) or "none"
                return answer(False, error=f"No handler found for action: {action} (available: {available})")
        except HandlerFailed as exc:
            return answer(False, error=exc.message)
        except Exception as exc:  # a streaming handler raised
            return answer(False, error=f"a2a {action} raised: {exc}")
        return answer(True, result if isinstance(result, str) else json.dumps(result, default=str))

    def actions(self) -> list[str]:
        return sorted({*self.agent.a2a_handlers, *self.agent.a2a_streams})

    def method(self, name: str) -> tuple[type[Message], Callable[[Any], Awaitable[Message]]] | None:
        """The request type and coroutine of a method, for the HTTP route."""
        requests: dict[str, type[Message]] = {
            "Health": agent_pb2.Empty,
            "DescribeCapabilities": agent_pb2.Empty,
            "Invoke": agent_pb2.ActionRequest,
            "Ping": agent_pb2.Empty,
        }
        if name not in requests:
            return None
        return requests[name], getattr(self, name)


async def over_http(service: AgentService, name: str, body: bytes) -> tuple[int, bytes]:
    """One method called over HTTP: (status, serialized reply or an error text)."""
    found = service.method(name)
    if found is None:
        return 404, f"no method {SERVICE}/{name}".encode()
    request_type, method = found
    try:
        request = request_type.FromString(body)
    except DecodeError as exc:
        return 400, f"body is not a serialized {request_type.__name__}: {exc}".encode()
    reply = await method(request)
    return 200, reply.SerializeToString()


async def start_grpc(service: AgentService, host: str, port: int) -> grpc.aio.Server:
    """Serve the service on host:port (raises RuntimeError when the port cannot be bound)."""
    server = grpc.aio.server()
    agent_pb2_grpc.add_AgentServiceServicer_to_server(service, server)
    server.add_insecure_port(f"{host}:{port}")
    await server.start()
    log.info("grpc serving", extra={"service": SERVICE, "port": port})
    return server
