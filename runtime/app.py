"""The runtime's ASGI app: every surface of one loaded agent plus health, readiness and metrics.

Route order matters: the runtime's own routes first (with the original runtime's, see
`runtime.contract`), then the package's REST routes (`rest.entry`), the UI under `/ui` and at its
`ui.basePath`, and last the package's own ASGI app (`http_server`) as a catch-all at `/`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.routing import APIRoute
from starlette.responses import JSONResponse, Response, StreamingResponse

from runtime import a2a, contract
from runtime.agent import Agent
from runtime.config import RuntimeSettings
from runtime.contract import Readiness
from runtime.invoke import HandlerFailed, call
from runtime.observe import Metrics, RequestObserver
from runtime.problem import MEDIA_TYPE, problem
from runtime.rest import mount_rest
from runtime.tasks import Pending
from runtime.telemetry import Propagate

log = logging.getLogger("runtime.app")
Endpoint = Callable[[Request], Awaitable[Response]]


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return problem_response(problem(status, code, message))


def problem_response(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=body["status"], media_type=MEDIA_TYPE)


def json_result(result: Any, status: int = 200) -> Response:
    """The handler's result as JSON; a result JSON cannot carry is the package's error (500)."""
    try:
        return JSONResponse(result, status_code=status)
    except (TypeError, ValueError):
        try:
            return JSONResponse(jsonable_encoder(result), status_code=status)
        except Exception as exc:
            return error_response(500, "bad_result", f"handler result is not JSON-serializable: {exc}")


async def plain(result: Any, time_limit: float) -> Any:
    """Outside A2A there is no task to leave open: a handler's `input_required(message)` answers its
    message, `keep_working(then, ...)` what `then()` settles to (within the same time limit)."""
    while isinstance(result, Pending):
        if result.then is None:
            return result.message
        try:
            async with asyncio.timeout(time_limit):
                result = await result.then()
        except TimeoutError:
            raise HandlerFailed(504, "timeout", f"its work did not finish within {time_limit:g}s") from None
        except Exception as exc:
            raise HandlerFailed(500, "handler_error", f"its work raised: {exc}", type(exc).__name__) from exc
    return result


async def read_json(request: Request) -> Any:
    body = await request.body()
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except ValueError as exc:
        raise HandlerFailed(400, "bad_request", f"request body is not valid JSON: {exc}") from exc


def create_app(
    agent: Agent,
    settings: RuntimeSettings | None = None,
    readiness: Readiness | None = None,
    boot_started: float | None = None,
    *,
    grpc_port: int | None = None,
) -> Any:
    """Build the FastAPI app for `agent`, wrapped in the request observer (metrics + log line) and
    the original runtime's front (BASE_PATH, UI_PORT). `boot_started` (a `time.monotonic()`) times
    the start against BOOT_BUDGET_MS; with `grpc_port`, `pixell.agent.AgentService` is served there
    for as long as the app runs (runtime.agent_service)."""
    settings = settings or RuntimeSettings()
    readiness = readiness or Readiness()
    request_timeout = settings.request_timeout

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            # Starlette does not run a mounted app's lifespan: the package's http_server (a
            # FastAPI/Starlette app such as pixell-sdk's AgentServer) gets its startup here.
            router = getattr(agent.http_app, "router", None)
            if router is not None and hasattr(router, "lifespan_context"):
                await stack.enter_async_context(router.lifespan_context(agent.http_app))
            if grpc_port is not None and service is not None:
                from runtime.agent_service import start_grpc

                grpc_server = await start_grpc(service(), settings.host, grpc_port)
                grace = settings.graceful_shutdown_timeout
                stack.push_async_callback(lambda: grpc_server.stop(grace))
                readiness.grpc = True
            readiness.ready = True
            if boot_started is not None:
                readiness.boot_ms = round((time.monotonic() - boot_started) * 1000, 1)
                if readiness.boot_ms > settings.boot_budget_ms:
                    log.warning(
                        "boot exceeded its budget",
                        extra={"boot_ms": readiness.boot_ms, "budget_ms": settings.boot_budget_ms},
                    )
            log.info(
                "ready",
                extra={
                    "agent": agent.name,
                    "version": agent.version,
                    "surfaces": agent.surfaces,
                    "boot_ms": readiness.boot_ms,
                },
            )
            yield
            readiness.ready = False

    app = FastAPI(
        title=agent.name,
        version=agent.version,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    metrics = Metrics()
    service = _add_agent_service(app, agent, request_timeout)
    rest_routes: list[dict[str, str]] = []
    app.router.routes.extend(
        contract.routes(agent, readiness, settings.agent_id, settings.base_path, rest_routes)
    )
    _add_probes(app, metrics, readiness)
    _add_invoke(app, agent, request_timeout)
    _add_cloudevents(app, agent, request_timeout)
    _add_a2a(app, agent, request_timeout)
    if agent.rest_mount is not None:
        before = len(app.router.routes)
        mount_rest(app, agent.rest_mount)
        rest_routes += [
            {"method": method, "path": route.path}
            for route in app.router.routes[before:]
            if isinstance(route, APIRoute)
            for method in sorted(route.methods or ())
        ]
    if agent.ui_dir is not None:
        spa = contract.SinglePageApp(agent.ui_dir)
        app.mount("/ui", spa, name="ui")
        at = contract.ui_base(agent, "/").rstrip("/")
        if at not in ("/ui", "") or (at == "" and agent.http_app is None):
            app.mount(at or "/", spa, name="ui_base")
    if agent.http_app is not None:
        app.mount("/", agent.http_app, name="http_server")
    ui_app = None
    if not settings.multiplexed and agent.ui_dir is not None:
        ui_app = contract.ui_only_app(agent, settings.base_path, settings.ui_port)
    observed = RequestObserver(Propagate(app), agent.name, metrics)
    return contract.Front(observed, settings.base_path, ui_app, settings.ui_port, settings.agent_id)


def _route(app: FastAPI, path: str, method: str) -> Callable[[Endpoint], Endpoint]:
    """Register a plain Starlette route. The runtime's endpoints take a Request and return a
    Response themselves, so FastAPI's parameter and response machinery is skipped: cheaper to
    build at start and per request. Package REST routes (`mount(app)`) stay FastAPI routes."""

    def register(endpoint: Endpoint) -> Endpoint:
        app.add_route(path, endpoint, methods=[method])
        return endpoint

    return register


def _add_probes(app: FastAPI, metrics: Metrics, readiness: Readiness) -> None:
    @_route(app, "/healthz", "GET")
    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    @_route(app, "/readyz", "GET")
    async def readyz(_: Request) -> JSONResponse:
        return JSONResponse({"ready": readiness.ready}, status_code=200 if readiness.ready else 503)

    @_route(app, "/metrics", "GET")
    async def prometheus(_: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


def _add_invoke(app: FastAPI, agent: Agent, time_limit: float) -> None:
    @_route(app, "/invoke", "POST")
    async def invoke(request: Request) -> Response:
        if agent.handler is None:
            return error_response(404, "no_entrypoint", f"{agent.name} declares no entrypoint")
        try:
            context = await read_json(request)
            result = await plain(
                await call(agent.handler, context, time_limit=time_limit, what="entrypoint"), time_limit
            )
        except HandlerFailed as exc:
            return problem_response(exc.problem())
        return json_result(result)


def _add_cloudevents(app: FastAPI, agent: Agent, time_limit: float) -> None:
    source = f"/agents/{agent.name}"

    @_route(app, "/", "POST")
    async def cloudevent(request: Request) -> Response:
        from runtime import events  # the SDK costs ~0.1 s to import: only pay for it when used

        try:
            event = events.parse(dict(request.headers), await request.body())
        except events.NotACloudEvent as exc:
            return error_response(400, "not_a_cloudevent", f"not a valid CloudEvent: {exc}")
        data = event.get_data()
        action = events.target_action(event.get_type(), agent.a2a_handlers)
        try:
            if action is not None:
                handler = agent.a2a_handlers[action]
                result = await call(handler, data, time_limit=time_limit, what=f"a2a {action}")
            elif agent.handler is not None:
                context = data if isinstance(data, dict) else {"data": data}
                result = await call(agent.handler, context, time_limit=time_limit, what="entrypoint")
            else:
                return error_response(404, "no_handler", f"no handler for event type {event.get_type()!r}")
            result = await plain(result, time_limit)
        except HandlerFailed as exc:
            return problem_response(exc.problem())
        if result is None:
            return Response(status_code=202)
        try:
            headers, body = events.reply(event, jsonable_encoder(result), source)
        except (TypeError, ValueError) as exc:
            return error_response(500, "bad_result", f"handler result is not JSON-serializable: {exc}")
        return Response(body, status_code=200, headers=headers)


def _add_agent_service(app: FastAPI, agent: Agent, time_limit: float) -> Callable[[], Any] | None:
    """`POST /pixell.agent.AgentService/{method}` (protobuf over HTTP) when the package has an a2a
    section; returns the service's getter (for the gRPC server) or None. grpcio and the stubs
    (~130 ms) load on first use only: a cold start under Knative, where no gRPC server runs, skips
    them."""
    if agent.prepared.manifest.a2a is None:
        return None
    made: list[Any] = []

    def service() -> Any:
        if not made:
            from runtime.agent_service import AgentService

            made.append(AgentService(agent, time_limit))
        return made[0]

    async def method(request: Request) -> Response:
        from runtime.agent_service import MEDIA_TYPE, over_http

        status, body = await over_http(service(), request.path_params["method"], await request.body())
        return Response(body, status_code=status, media_type=MEDIA_TYPE if status == 200 else "text/plain")

    app.add_route("/pixell.agent.AgentService/{method}", method, methods=["POST"])  # agent_service.SERVICE
    return service


def _add_a2a(app: FastAPI, agent: Agent, time_limit: float) -> None:
    server = a2a.A2AServer(agent, time_limit)

    async def agent_card(request: Request) -> JSONResponse:
        return JSONResponse(a2a.agent_card(agent, str(request.base_url)))

    for path in ("/.well-known/agent-card.json", "/.well-known/agent.json"):  # 0.3, and before
        app.add_route(path, agent_card, methods=["GET"])

    @_route(app, "/a2a", "POST")
    async def a2a_rpc(request: Request) -> Response:
        try:
            payload = json.loads(await request.body())
        except ValueError as exc:
            return JSONResponse(a2a.parse_error(str(exc)))
        answer = await server.respond(payload)
        if isinstance(answer, dict):
            return json_result(answer)
        events = answer

        async def body() -> AsyncIterator[bytes]:
            async for response in events:
                yield a2a.sse(response)

        headers = {"Cache-Control": "no-cache"}
        return StreamingResponse(body(), media_type="text/event-stream", headers=headers)
