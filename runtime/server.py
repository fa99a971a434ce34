"""Serve one agent with uvicorn: resolve and load the package, then bind `$PORT`.

The package is loaded before the port is bound, so a bad package exits non-zero with its reason
and never answers a probe. SIGTERM stops accepting, lets in-flight requests finish for up to
`GRACEFUL_SHUTDOWN_TIMEOUT_SEC`, then exits 0 (uvicorn's graceful shutdown).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time

from runtime import jsonlog
from runtime.apkg import ApkgError
from runtime.config import RuntimeSettings

log = logging.getLogger("runtime.server")

EXIT_BAD_PACKAGE = 2
EXIT_BAD_SETTING = 2
EXIT_STARTUP_FAILED = 3  # uvicorn's own code for it


def settings_or_exit() -> RuntimeSettings | int:
    """The settings, or the exit code after one line naming each bad variable (no traceback)."""
    from pydantic import ValidationError

    try:
        jsonlog.LogSettings()  # read again by jsonlog.configure: a bad value is caught here
        return RuntimeSettings()
    except ValidationError as exc:
        from runtime.settingtypes import describe

        which = RuntimeSettings if exc.title == RuntimeSettings.__name__ else jsonlog.LogSettings
        print(f"par runtime: {describe(exc, which)}", file=sys.stderr)
        return EXIT_BAD_SETTING


def run(source: str | None = None, *, port: int | None = None, host: str | None = None) -> int:
    """Serve until stopped; returns the process exit code."""
    boot_started = time.monotonic()
    settings = settings_or_exit()
    if isinstance(settings, int):
        return settings
    jsonlog.configure("runtime", settings.log_level)
    try:
        from runtime.agent import load
        from runtime.app import create_app
        from runtime.contract import Readiness
        from runtime.sources import resolve

        prepared = resolve(source, settings, progress=lambda line: log.info(line))
        agent = load(prepared)
    except ApkgError as exc:
        log.error("package refused: %s", exc, extra={"code": exc.code})
        print(f"par runtime: package refused ({exc.code}): {exc}", file=sys.stderr)
        return EXIT_BAD_PACKAGE
    grpc_port = None
    bind_host = host or settings.host
    # Under Knative (K_SERVICE set) only the `{agent}-grpc` variant, which sets A2A_PORT, can route
    # to the gRPC port; elsewhere the original's default applies.
    if agent.prepared.manifest.a2a is not None and (settings.a2a_port_set or not settings.k_service):
        if _can_bind(bind_host, settings.a2a_port):
            grpc_port = settings.a2a_port
        elif settings.a2a_port_set:
            print(f"par runtime: cannot listen on A2A_PORT {settings.a2a_port} (in use?)", file=sys.stderr)
            return EXIT_STARTUP_FAILED
        else:
            log.warning("A2A_PORT %s is in use: serving without gRPC", settings.a2a_port)
    try:
        app = create_app(agent, settings, Readiness(), boot_started, grpc_port=grpc_port)
    except ApkgError as exc:
        log.error("package refused: %s", exc, extra={"code": exc.code})
        print(f"par runtime: package refused ({exc.code}): {exc}", file=sys.stderr)
        return EXIT_BAD_PACKAGE

    import uvicorn

    config = uvicorn.Config(
        app,
        host=bind_host,
        port=port or settings.http_port,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=settings.graceful_shutdown_timeout,  # type: ignore[arg-type]
    )
    ports = [config.port]
    if not settings.multiplexed and agent.ui_dir is not None:
        ports.append(settings.ui_port)  # the original's standalone UI port (runtime.contract.Front)
    try:
        sockets = [_bind(config.host, p) for p in ports]
    except OSError as exc:
        log.error("cannot bind", extra={"error": str(exc), "ports": ports})
        print(f"par runtime: cannot listen on {config.host} port(s) {ports}: {exc}", file=sys.stderr)
        return EXIT_STARTUP_FAILED
    log.info(
        "serving",
        extra={
            "agent": agent.name,
            "version": agent.version,
            "port": config.port,
            "ports": ports,
            "grpc_port": grpc_port,
            "base_path": settings.base_path,
            "revision": settings.k_revision,
            "app_id": settings.agent_id,
            "deployment_id": settings.deployment_id,
        },
    )
    # uvicorn re-raises the SIGTERM it drained on; with this no-op handler that ends in exit 0.
    signal.signal(signal.SIGTERM, lambda *_: None)
    server = uvicorn.Server(config)
    server.run(sockets=sockets)
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


def _can_bind(host: str, port: int) -> bool:
    try:
        _bind(host, port).close()
    except OSError:
        return False
    return True


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket, as uvicorn binds one (so one server can serve several ports)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
