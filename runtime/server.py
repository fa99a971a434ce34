"""Serve one agent with uvicorn: resolve and load the package, then bind `$PORT`.

The package is loaded before the port is bound, so a bad package exits non-zero with its reason
and never answers a probe. SIGTERM stops accepting, lets in-flight requests finish for up to
`GRACEFUL_SHUTDOWN_TIMEOUT_SEC`, then exits 0 (uvicorn's graceful shutdown).
"""

from __future__ import annotations

import logging
import os
import signal
import sys

from runtime import jsonlog
from runtime.apkg import ApkgError
from runtime.config import RuntimeSettings

log = logging.getLogger("runtime.server")

EXIT_BAD_PACKAGE = 2
EXIT_STARTUP_FAILED = 3  # uvicorn's own code for it


def run(source: str | None = None, *, port: int | None = None, host: str | None = None) -> int:
    """Serve until stopped; returns the process exit code."""
    settings = RuntimeSettings()
    jsonlog.configure("runtime", settings.log_level)
    try:
        from runtime.agent import load
        from runtime.app import create_app
        from runtime.sources import resolve

        prepared = resolve(source, settings, progress=lambda line: log.info(line))
        agent = load(prepared)
        app = create_app(agent, request_timeout=settings.request_timeout)
    except ApkgError as exc:
        log.error("package refused: %s", exc, extra={"code": exc.code})
        print(f"par runtime: package refused ({exc.code}): {exc}", file=sys.stderr)
        return EXIT_BAD_PACKAGE

    import uvicorn

    config = uvicorn.Config(
        app,
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=settings.graceful_shutdown_timeout,  # type: ignore[arg-type]
    )
    log.info(
        "serving",
        extra={
            "agent": agent.name,
            "version": agent.version,
            "port": config.port,
            "revision": settings.k_revision,
            "app_id": settings.agent_id,
        },
    )
    # uvicorn re-raises the SIGTERM it drained on; with this no-op handler that ends in exit 0.
    signal.signal(signal.SIGTERM, lambda *_: None)
    server = uvicorn.Server(config)
    server.run()
    if not server.started:  # the port was taken or the package's own startup failed
        log.error("startup failed", extra={"agent": agent.name})
        return EXIT_STARTUP_FAILED
    from runtime.invoke import threads_still_running

    stuck = threads_still_running()
    log.info("stopped", extra={"agent": agent.name, "abandoned_handlers": stuck})
    if stuck:
        # Sync handlers still running past the graceful timeout cannot be cancelled; do not let
        # them hold the process open after the drain deadline.
        logging.shutdown()
        os._exit(0)
    return 0
