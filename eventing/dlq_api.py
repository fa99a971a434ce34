"""`/dead-letters`: the dead-letter store's sink and its list, show, redrive and purge routes.

`POST /dead-letters` is a dead-letter sink like any other (a Trigger may name it); reading,
sending again and purging need the admin token when one is set (dead letters hold event data).
Redrive sends the original event (without the knativeerror* extensions) to the Trigger's
subscriber the way the dispatcher does (its retries and timeout, a reply goes back into the
broker) and removes the dead letter once it was delivered. Errors are RFC 9457 problems whose
`code` is listed in docs/errors.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from eventing import metrics, wire
from eventing.deadletters import (
    ATTEMPTS_HEADER,
    TRIGGER_HEADER,
    DeadLetterStore,
    Failure,
    Query,
    update_gauge,
    view,
)
from eventing.delivery import Outcome, deliver
from eventing.objects import DeliverySpec
from runtime.compare import bearer_matches, only_value

log = logging.getLogger("eventing.deadletters")


@dataclass(frozen=True)
class Target:
    """Where a redrive goes: the Trigger's subscriber and delivery rules, and where a reply goes."""

    url: str
    spec: DeliverySpec
    reply: Callable[[Outcome], Awaitable[None]] | None = None


# (namespace, trigger, the dead letter's knativeerrordest) -> where to send it again
Resolver = Callable[[str, str, str], Target]


def by_destination(namespace: str, trigger: str, destination: str) -> Target:
    """Without the Trigger at hand (`par eventing dlq serve`): the subscriber the event failed at."""
    return Target(destination, DeliverySpec())


def problem(status: int, title: str, detail: str, code: str) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, "code": code}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


async def _authorized(request: Request) -> None:
    token = request.app.state.dead_letter_token
    if token and not bearer_matches(only_value(request.headers.getlist("authorization")), token):
        raise _Refused(problem(401, "Unauthorized", "dead letters: missing or wrong bearer token",
                               "missing_credentials"))


class _Refused(Exception):
    def __init__(self, response: JSONResponse) -> None:
        self.response = response


def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, _Refused)
    return exc.response


sink = APIRouter()
router = APIRouter(prefix="/dead-letters", dependencies=[Depends(_authorized)])


def mount(
    app: FastAPI,
    store: DeadLetterStore,
    *,
    token: str | None,
    resolve: Resolver,
    session: aiohttp.ClientSession,
    delivery_timeout: float,
) -> None:
    """Serve `store` on `app` (the eventing app, or `par eventing dlq serve`'s own)."""
    app.state.dead_letters = store
    app.state.dead_letter_token = token
    app.state.redrive_target = resolve
    app.state.dead_letter_session = session
    app.state.delivery_timeout = delivery_timeout
    update_gauge(store)


def routes(app: FastAPI) -> None:
    app.add_exception_handler(_Refused, _refused)
    app.include_router(sink)
    app.include_router(router)


def _when(value: str | None, name: str) -> float | None:
    """An ISO-8601 time, or a duration back from now (`90s`, `2h`, `1d`)."""
    if value is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if value[-1:] in units and value[:-1].replace(".", "", 1).isdigit():
        return time.time() - float(value[:-1]) * units[value[-1]]
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        detail = f"{name}: {value!r} is neither an ISO-8601 time nor a duration such as 90s, 2h, 1d"
        raise _Refused(problem(400, "Bad Request", detail, code="bad_time")) from None


def _query(request: Request) -> Query:
    params = request.query_params
    trigger = params.get("trigger")
    namespace = params.get("namespace")
    if trigger and "/" in trigger:
        namespace, trigger = trigger.split("/", 1)
    limit = params.get("limit", "1000")
    if not limit.isdigit():
        raise _Refused(problem(400, "Bad Request", f"limit: {limit!r} is not a number", code="bad_limit"))
    return Query(namespace, trigger, params.get("type"), _when(params.get("since"), "since"),
                 _when(params.get("until"), "until"), int(limit))


@sink.post("/dead-letters", status_code=202)
async def store_dead_letter(request: Request) -> JSONResponse:
    """The sink: a CloudEvent as any dead-letter sink gets it."""
    store: DeadLetterStore = request.app.state.dead_letters
    try:
        event = wire.from_http(dict(request.headers), await request.body())
    except wire.InvalidEvent as exc:
        return problem(400, "Bad Request", str(exc), code="not_a_cloudevent")
    namespace, _, trigger = request.headers.get(TRIGGER_HEADER, "/").partition("/")
    attempts = request.headers.get(ATTEMPTS_HEADER, "1")
    entry_id = store.add(event, Failure(namespace, trigger, int(attempts) if attempts.isdigit() else 1))
    update_gauge(store)
    return JSONResponse({"id": entry_id}, status_code=202)


@router.get("")
async def list_dead_letters(request: Request) -> JSONResponse:
    store: DeadLetterStore = request.app.state.dead_letters
    return JSONResponse({"items": store.list(_query(request))})


@router.get("/{entry_id}")
async def show_dead_letter(request: Request, entry_id: str) -> JSONResponse:
    entry = request.app.state.dead_letters.get(entry_id)
    if entry is None:
        return _not_found(entry_id)
    return JSONResponse(view(entry))


@router.delete("/{entry_id}")
async def delete_dead_letter(request: Request, entry_id: str) -> Response:
    store: DeadLetterStore = request.app.state.dead_letters
    if not store.delete(entry_id):
        return _not_found(entry_id)
    update_gauge(store)
    metrics.DEAD_LETTERS_PURGED.inc()
    return Response(status_code=204)


@router.delete("")
async def purge_dead_letters(request: Request) -> JSONResponse:
    store: DeadLetterStore = request.app.state.dead_letters
    purged = store.purge(_query(request))
    update_gauge(store)
    metrics.DEAD_LETTERS_PURGED.inc(purged)
    return JSONResponse({"purged": purged})


@router.post("/{entry_id}/redrive")
async def redrive_one(request: Request, entry_id: str) -> JSONResponse:
    entry = request.app.state.dead_letters.get(entry_id)
    if entry is None:
        return _not_found(entry_id)
    result = await _redrive(request, entry)
    return JSONResponse(result, status_code=200 if result["delivered"] else 502)


@router.post("/redrive")
async def redrive_many(request: Request) -> JSONResponse:
    store: DeadLetterStore = request.app.state.dead_letters
    results = [await _redrive(request, entry) for summary in store.list(_query(request))
               if (entry := store.get(summary["id"])) is not None]
    delivered = sum(r["delivered"] for r in results)
    return JSONResponse({"delivered": delivered, "failed": len(results) - delivered, "items": results})


async def _redrive(request: Request, entry: dict[str, Any]) -> dict[str, Any]:
    """Deliver the original event again; remove the dead letter once its subscriber took it."""
    store: DeadLetterStore = request.app.state.dead_letters
    session: aiohttp.ClientSession = request.app.state.dead_letter_session
    resolve: Resolver = request.app.state.redrive_target
    event = store.event(entry)
    target = resolve(entry["namespace"], entry["trigger"], entry["destination"])
    outcome = await deliver(session, target.url, event, target.spec, request.app.state.delivery_timeout)
    result = {"id": entry["id"], "event_id": entry["event_id"], "url": target.url, "delivered": outcome.ok,
              "status": outcome.status, "attempts": outcome.attempts}
    if outcome.ok:
        store.delete(entry["id"])
        metrics.DEAD_LETTERS_REDRIVEN.labels("delivered").inc()
        if target.reply is not None:
            await target.reply(outcome)
    else:
        store.failed_again(entry["id"], outcome.attempts, outcome.status, outcome.error)
        metrics.DEAD_LETTERS_REDRIVEN.labels("failed").inc()
        result["error"] = outcome.error
    update_gauge(store)
    log.info("dead letter redriven", extra={**result})
    return result


def _not_found(entry_id: str) -> JSONResponse:
    return problem(404, "Not Found", f"no dead letter {entry_id}", code="dead_letter_not_found")


def standalone_app(
    path: str, token: str | None, delivery_timeout: float, *, insecure: bool = False
) -> FastAPI:
    """`par eventing dlq serve`: the store alone, as a Knative dead-letter sink Service. Redrive goes
    to the subscriber the event failed at (`knativeerrordest`), once, without Trigger retries.
    Without `token` it refuses (ValueError) unless `insecure` says to serve the dead letters to anyone."""
    from eventing.settings import missing_token

    refusal = missing_token(token, insecure, "the dead-letter store")
    if refusal:
        raise ValueError(refusal)
    import contextlib
    from collections.abc import AsyncIterator

    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = DeadLetterStore(path)
        async with aiohttp.ClientSession() as session:
            mount(app, store, token=token, resolve=by_destination, session=session,
                  delivery_timeout=delivery_timeout)
            try:
                yield
            finally:
                store.close()

    app = FastAPI(title="PAR dead letters", lifespan=lifespan)
    routes(app)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics_text() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
