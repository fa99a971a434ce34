"""The registry's FastAPI application: lifespan (migrations, admin key, backend), routers,
problem+json errors, one JSON log line per request and Prometheus metrics at /metrics."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Scope

from registry import console, feed, problems
from registry.api import agents, deadletters, deployments, keys, logs, platform, triggers
from registry.artifacts import ArtifactStore
from registry.auth import KeyCache, bootstrap_admin, install_gateway_key
from registry.backends import create_backend
from registry.backends.base import DeployBackend
from registry.db import open_database
from registry.readcache import ReadCache
from registry.settings import RegistrySettings
from registry.state import RegistryState
from runtime.observe import ObservedRequests

log = logging.getLogger("registry")
# Polled all the time (the gateway's feed every 2 s, probes, scrapes, the console's live parts):
# a line per success at debug only, or a terminal shows nothing else.
POLLED = frozenset({"/v1/gateway/snapshot", "/healthz", "/readyz", "/metrics",
                    "/console/agents/{namespace}/{name}/series"})


def _announce(key: str, settings: RegistrySettings) -> None:
    print(f"Admin API key (shown once; saved to {settings.data_dir / 'admin.key'}):\n{key}", flush=True)


def create_app(
    settings: RegistrySettings | None = None,
    *,
    port: int = 8097,
    backend: DeployBackend | None = None,
    announce: Callable[[str, RegistrySettings], None] = _announce,
) -> FastAPI:
    """The registry app. `backend` overrides PAR_DEPLOY_BACKEND (e.g. `par up` passes its own);
    `announce` receives a newly generated admin key once."""
    settings = settings or RegistrySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = await open_database(settings)
        async with db.sessions() as session:
            await feed.ensure_meta(session)
            await session.flush()
            new_key = await bootstrap_admin(session, settings.data_dir, settings.admin_key)
            if settings.gateway_key:
                await install_gateway_key(session, settings.gateway_key)
            await session.commit()
        if new_key:
            announce(new_key, settings)
        state = RegistryState(
            settings=settings,
            db=db,
            store=ArtifactStore(settings.data_dir / "artifacts", settings.artifact_base(port)),
            backend=backend or create_backend(settings),
            keys=KeyCache(settings.auth_cache_seconds),
            reads=ReadCache(settings.read_cache_seconds),
        )
        db.after_commit.append(state.reads.clear)  # any change: cached reads are stale now
        await state.reconciler.resume()
        app.state.registry = state
        # What is loaded by now lives as long as the process: keep it out of the collector's full
        # passes, which otherwise stall requests for tens of ms on a large heap (tail latency).
        gc.collect()
        gc.freeze()
        await app.state.console.start()
        log.info(
            "registry started", extra={"backend": state.backend.name, "database": db.engine.url.drivername}
        )
        try:
            yield
        finally:
            await app.state.console.aclose()
            await state.reconciler.close()
            await state.backend.aclose()
            await db.close()

    app = FastAPI(title="PAR registry", version="0.1.0", lifespan=lifespan)
    problems.install(app)
    for module in (agents, deployments, triggers, deadletters, keys, platform, logs):
        app.include_router(module.router)
    metrics_urls = [u.strip() for u in (settings.console_metrics_url or "").split(",") if u.strip()]
    app.state.console = console.Console(
        settings.gateway_url, metrics_urls, settings.domain, trusted_proxies=settings.console_trusted_proxies
    )
    app.include_router(console.router)
    _instrument(app)
    return app


class _Observe(ObservedRequests):
    """One log line (debug for what is polled) and Prometheus samples per request."""

    def __init__(self, app: ASGIApp, requests: Counter, latency: Histogram) -> None:
        super().__init__(app)
        self.requests, self.latency = requests, latency

    def finished(self, scope: Scope, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", "unmatched")
        self.requests.labels(scope["method"], route, str(status)).inc()
        self.latency.labels(scope["method"], route).observe(seconds)
        polled = route in POLLED or b"live=1" in scope.get("query_string", b"")
        log.log(
            logging.DEBUG if polled and status < 400 else logging.INFO,
            "request",
            extra={
                "method": scope["method"],
                "route": route,
                "path": scope["path"],
                "status": status,
                "ms": round(seconds * 1000, 2),
            },
        )


def _instrument(app: FastAPI) -> None:
    metrics = CollectorRegistry()
    requests = Counter(
        "par_registry_requests", "Registry HTTP requests", ["method", "route", "status"], registry=metrics
    )
    latency = Histogram(
        "par_registry_request_seconds",
        "Registry request latency",
        ["method", "route"],
        registry=metrics,
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
    )

    @app.get("/metrics", include_in_schema=False)
    async def _metrics() -> Response:
        return Response(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(_Observe, requests=requests, latency=latency)
