"""`par up`: start every part of the platform in one process tree, stop all of it together.

Order (each step waits for the previous one to serve): the Kafka-compatible broker (embedded
Tansu unless `KAFKA_BOOTSTRAP_SERVERS`), the eventing ingress + dispatcher (deliveries go to the
activator), the activator listener, the registry (SQLite in the data folder, the local backend),
the gateway proxy (the local backend's supervisor as its Resolver). Then stored deployments and
triggers are applied again and `platform.json` is written for client commands.

Runtime instances run in their own process groups with PR_SET_PDEATHSIG, so even a SIGKILL of
`par up` takes them down; Ctrl-C / SIGTERM stops them gracefully first.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.backends.local import LocalBackend, LocalSettings, Supervisor
from registry.backends.local.activator import Activator

from .discovery import PlatformInfo, read_admin_key, read_platform, remove_platform, write_platform
from .servers import Served, bind

log = logging.getLogger("par.up")


class AlreadyRunning(RuntimeError):
    """Another `par up` serves this data folder."""


@dataclass(frozen=True)
class UpOptions:
    data_dir: Path
    port: int = 8080
    registry_port: int = 0  # 0: any free loopback port
    eventing_port: int = 0
    activator_port: int = 0
    domain: str = "127.0.0.1.sslip.io"


class Platform:
    """The running parts; `start()` then `stop()` (also on failure half-way)."""

    def __init__(self, options: UpOptions) -> None:
        self.options = options
        self.data_dir = options.data_dir.expanduser().resolve()
        self.supervisor = Supervisor(LocalSettings(data_dir=self.data_dir))
        self._served: list[Served] = []
        self._kafka: Any = None
        self.admin_key: str | None = None
        self.new_admin_key = False
        self.info: PlatformInfo | None = None
        self.registry_state: Any = None

    async def start(self) -> PlatformInfo:
        from gateway.proxy import build_proxy_app
        from gateway.settings import GatewaySettings
        from registry.app import create_app
        from registry.settings import RegistrySettings

        self.data_dir.mkdir(parents=True, exist_ok=True)
        other = read_platform(self.data_dir)
        if other is not None and other.pid != os.getpid():
            raise AlreadyRunning(
                f"par up (pid {other.pid}) already serves {self.data_dir} at {other.gateway_url}"
            )
        opts = self.options
        sockets = {
            "gateway": bind("gateway", opts.port),
            "registry": bind("registry", opts.registry_port),
            "eventing": bind("eventing", opts.eventing_port),
            "activator": bind("activator", opts.activator_port),
        }
        urls = {name: f"http://127.0.0.1:{sock.getsockname()[1]}" for name, sock in sockets.items()}
        await self.supervisor.start()
        atexit.register(self.supervisor.kill_all_now)

        await self._serve("eventing", await self._eventing_app(urls["activator"]), sockets.pop("eventing"))
        activator = Activator(self.supervisor, self.supervisor.statuses)
        await self._serve("activator", activator, sockets.pop("activator"))

        backend = LocalBackend(
            self.supervisor,
            url_template=f"http://{{agent}}.{{namespace}}.{opts.domain}:{opts.port}",
            eventing_admin_url=urls["eventing"],
        )
        registry_settings = RegistrySettings(
            data_dir=self.data_dir,
            deploy_backend="local",
            domain=opts.domain,
            public_url=urls["registry"],
            broker_ingress_url=urls["eventing"] + "/{namespace}/{broker}",
        )
        registry_sock = sockets.pop("registry")
        registry_app = create_app(
            registry_settings, port=registry_sock.getsockname()[1], backend=backend, announce=self._announce
        )
        await self._serve("registry", registry_app, registry_sock)
        self.registry_state = registry_app.state.registry
        self.admin_key = self.admin_key or registry_settings.admin_key or read_admin_key(self.data_dir)

        gateway_settings = GatewaySettings(
            mode="proxy", port=opts.port, domain=opts.domain,
            registry_url=urls["registry"], registry_key=self.admin_key,
        )
        gateway_app = build_proxy_app(gateway_settings, resolver=self.supervisor)
        await self._serve(
            "gateway", gateway_app, sockets.pop("gateway"), **gateway_settings.uvicorn_options()
        )

        # Processes and the embedded broker's data died with the last `par up`: apply the stored
        # state again; the registry then follows each agent's live status for as long as it runs.
        await self.registry_state.deployer.resync()
        self.info = PlatformInfo(
            gateway_url=urls["gateway"], registry_url=urls["registry"], eventing_url=urls["eventing"],
            activator_url=urls["activator"], domain=opts.domain, pid=os.getpid(),
        )
        write_platform(self.data_dir, self.info)
        return self.info

    async def _eventing_app(self, activator_url: str) -> Any:
        """Ingress + dispatcher on `KAFKA_BOOTSTRAP_SERVERS`, else on an embedded broker that
        lives as long as the platform. Triggers name agents; deliveries go to the activator."""
        from eventing.app import create_app
        from eventing.embedded import EmbeddedKafka
        from eventing.settings import EventingSettings

        settings = EventingSettings(PAR_EVENTING_SERVICE_URL_TEMPLATE=activator_url + "/{namespace}/{name}")
        bootstrap = settings.kafka_bootstrap_servers
        if not bootstrap:
            self._kafka = EmbeddedKafka()
            async with asyncio.timeout(30):
                bootstrap = await self._kafka.astart()  # spawned on the platform's own (main) thread
        return create_app(settings, bootstrap)

    def _announce(self, key: str, _: Any) -> None:
        self.admin_key, self.new_admin_key = key, True

    async def _serve(self, name: str, app: Any, sock: Any, **options: Any) -> None:
        served = Served(name, app, sock, **options)
        await served.start()
        self._served.append(served)
        log.info("serving", extra={"part": name, "url": served.url})

    async def stop(self) -> None:
        """Stop in reverse order: no new requests, then agents, then eventing and the broker."""
        if self.info is not None:
            remove_platform(self.data_dir)
        for served in reversed(self._served):
            await served.stop()
        self._served.clear()
        await self.supervisor.close()
        if self._kafka is not None:
            await asyncio.to_thread(self._kafka.stop)
            self._kafka = None


async def run(options: UpOptions, on_ready: Callable[[Platform], Any]) -> None:
    """Start the platform, call `on_ready`, serve until SIGINT/SIGTERM, stop everything.

    A second Ctrl-C while stopping kills every agent at once."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    platform = Platform(options)

    def on_signal() -> None:
        if stop.is_set():
            platform.supervisor.kill_all_now()
            os._exit(130)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        await platform.start()
        result = on_ready(platform)
        if asyncio.iscoroutine(result):
            await result
        await stop.wait()
    finally:
        log.info("stopping")
        with contextlib.suppress(Exception):
            await platform.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
