"""The eventing ASGI app: ingress, admin API, health and metrics around one `Eventing` plane."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from eventing import admin, dlq_api
from eventing.control import Eventing, NotReady
from eventing.ingress import ingress
from eventing.kafka import Kafka, client_options
from eventing.objects import load_documents
from eventing.settings import EventingSettings, missing_token

log = logging.getLogger("eventing.app")


def load_config(path: Path) -> list[dict[str, Any]]:
    """The Broker, Trigger (and ConfigMap) objects of a `--config` YAML file, ConfigMaps first."""
    docs = load_documents(path.read_text())
    return sorted(docs, key=lambda d: {"ConfigMap": 0, "Broker": 1}.get(str(d.get("kind")), 2))


def create_app(
    settings: EventingSettings,
    bootstrap: str,
    *,
    objects: list[dict[str, Any]] | None = None,
    ingress_enabled: bool = True,
    dispatcher_enabled: bool = True,
    ready_timeout: float = 60.0,
) -> FastAPI:
    """Start-up connects to Kafka, applies `objects` and waits (bounded) until every Trigger joined.
    Without `admin_token` it refuses (ValueError) unless `insecure_no_auth` says to serve the admin
    API and the dead letters to anyone."""
    refusal = missing_token(settings.admin_token, settings.insecure_no_auth, "the admin API")
    if refusal:
        raise ValueError(refusal)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        kafka = Kafka(bootstrap, settings.produce_timeout, client_options(settings))
        await kafka.start()
        eventing = Eventing(settings, kafka, dispatcher=dispatcher_enabled)
        app.state.eventing = eventing
        if eventing.dead_letters is not None:
            dlq_api.mount(app, eventing.dead_letters, token=settings.admin_token,
                          resolve=eventing.redrive_target, session=eventing.session,
                          delivery_timeout=settings.delivery_timeout)
        try:
            await eventing.start()
            for obj in objects or []:
                await eventing.apply(obj)
            try:
                await eventing.wait_ready(ready_timeout)
            except NotReady as exc:
                log.error("eventing cannot start", extra={"error": str(exc)})
                raise
            gc.freeze()  # start-up objects (schemas, imports) leave the collector's work: shorter pauses
            log.info("eventing ready", extra={"kafka": bootstrap, "brokers": len(eventing.brokers),
                                              "triggers": len(eventing.triggers), "ingress": ingress_enabled,
                                              "dispatcher": dispatcher_enabled})
            yield
        finally:
            await eventing.stop()
            await kafka.stop()

    app = FastAPI(title="PAR eventing", lifespan=lifespan)
    app.include_router(admin.router)
    if settings.dead_letters:
        dlq_api.routes(app)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        eventing = request.app.state.eventing
        ready, failures = eventing.ready(), eventing.failures()
        body = {"ready": ready, **({"failures": failures} if failures else {})}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    if ingress_enabled:
        app.router.add_route("/{namespace}/{broker}", ingress, methods=["POST"])
    return app
