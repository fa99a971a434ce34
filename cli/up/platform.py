"""`par up`: start every part of the platform in one process tree, stop all of it together.

Order (each step waits for the previous one to serve): the Kafka-compatible broker (embedded
Tansu unless `KAFKA_BOOTSTRAP_SERVERS`), the eventing ingress + dispatcher (deliveries go to
serving's local gateway), the local gateway, the registry (SQLite in the data folder, the local
backend over serving's controller), the gateway proxy (serving's activator as its Resolver).
Then stored deployments and triggers are applied again; `platform.json` is written for clients.

Runtime instances run in their own process groups with PR_SET_PDEATHSIG, so even a SIGKILL of
`par up` takes them down; Ctrl-C / SIGTERM stops them gracefully first.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import secrets
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.hosts import DEFAULT_DOMAIN
from registry.discovery import PlatformInfo, read_admin_key, read_platform, remove_platform, write_platform
from serving import Controller, ServingSettings

from .servers import Served, bind

log = logging.getLogger("par.up")
EVENTING_TOKEN_FILE = "eventing-admin.token"


class AlreadyRunning(RuntimeError):
    """Another `par up` serves this data folder."""


@dataclass(frozen=True)
class UpOptions:
    data_dir: Path
    port: int = 8080
    registry_port: int = 0  # 0: any free loopback port
    eventing_port: int = 0
    local_gateway_port: int = 0
    grpc_port: int = 0  # the gRPC way in (serving.GrpcFront); 0: any free loopback port
    domain: str = DEFAULT_DOMAIN


class Platform:
    """The running parts; `start()` then `stop()` (also on failure half-way)."""

    def __init__(self, options: UpOptions) -> None:
        self.options = options
        self.data_dir = options.data_dir.expanduser().resolve()
        self.serving = Controller(ServingSettings(data_dir=self.data_dir))
        self._served: list[Served] = []
        self._kafka: Any = None
        self.admin_key: str | None = None
        self.new_admin_key = False
        self.info: PlatformInfo | None = None
        self.registry_state: Any = None
        self.grpc_front: Any = None
        self.grpc_address: str | None = None

    async def start(self) -> PlatformInfo:
        from gateway.proxy import build_proxy_app
        from gateway.settings import GatewaySettings
        from registry.app import create_app
        from registry.backends.local import LocalBackend
        from registry.settings import RegistrySettings
        from serving import LocalGateway

        os.umask(0o077)  # everything the platform writes is its own: keys, database, logs, packages
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
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
            "local-gateway": bind("local-gateway", opts.local_gateway_port),
        }
        urls = {name: f"http://127.0.0.1:{sock.getsockname()[1]}" for name, sock in sockets.items()}
        # Instances may call the gateway (and their K_SINK); no other platform port.
        self.serving.confiner.allow_connect(sockets["gateway"].getsockname()[1])
        await self.serving.start()
        atexit.register(self.serving.kill_all_now)

        # The eventing admin API shares the ingress's port, which agents may reach (K_SINK): it
        # takes a token only the platform knows (also in <data dir>/eventing-admin.token).
        eventing_token = secrets.token_urlsafe(32)
        token_file = self.data_dir / EVENTING_TOKEN_FILE
        token_file.write_text(eventing_token + "\n")
        eventing = await self._eventing_app(urls["local-gateway"], eventing_token)
        await self._serve("eventing", eventing, sockets.pop("eventing"))
        local_gateway = LocalGateway(self.serving.activator, self.serving.statuses)
        await self._serve("local-gateway", local_gateway, sockets.pop("local-gateway"))
        # grpcio loads only here: the forked runtime template never sees it. The platform forks only to
        # exec (instances, `par runtime prepare`), so gRPC's fork handlers have nothing to protect and
        # would log a line on every start.
        os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
        from serving import GrpcFront

        self.grpc_front = GrpcFront(self.serving.activator)
        self.grpc_address = f"127.0.0.1:{await self.grpc_front.start('127.0.0.1', opts.grpc_port)}"
        log.info("serving", extra={"part": "grpc", "address": self.grpc_address})

        backend = LocalBackend(
            self.serving,
            domain=opts.domain,
            port=opts.port,
            eventing_admin_url=urls["eventing"],
            eventing_admin_token=eventing_token,
        )
        registry_settings = RegistrySettings(
            data_dir=self.data_dir,
            domain=opts.domain,
            public_url=urls["registry"],
            broker_ingress_url=urls["eventing"] + "/{namespace}/{broker}",
            gateway_url=urls["gateway"],
            console_metrics_url=urls["gateway"] + "/metrics",  # one process: every part's metrics
            dead_letters_url=urls["eventing"], dead_letters_token=eventing_token,
            gateway_key=self._gateway_key(),  # the gateway's: it reads the snapshot feed, nothing else
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
            registry_url=urls["registry"], registry_key=registry_settings.gateway_key,
        )
        gateway_app = build_proxy_app(gateway_settings, resolver=self.serving.activator)
        await self._serve(
            "gateway", gateway_app, sockets.pop("gateway"), **gateway_settings.uvicorn_options()
        )

        # Processes and the embedded broker's data died with the last `par up`: apply the stored
        # state again; the registry then follows each agent's live status for as long as it runs.
        await self.registry_state.reconciler.resync()
        self.info = PlatformInfo(
            gateway_url=urls["gateway"], registry_url=urls["registry"], eventing_url=urls["eventing"],
            local_gateway_url=urls["local-gateway"], domain=opts.domain, pid=os.getpid(),
        )
        write_platform(self.data_dir, self.info)
        return self.info

    async def _eventing_app(self, local_gateway_url: str, admin_token: str) -> Any:
        """Ingress + dispatcher on `KAFKA_BOOTSTRAP_SERVERS`, else on an embedded broker that
        lives as long as the platform. Triggers name agents; deliveries go to the local gateway."""
        from eventing.app import create_app
        from eventing.embedded import EmbeddedKafka
        from eventing.settings import EventingSettings

        deliveries = local_gateway_url + "/{namespace}/{name}"
        settings = EventingSettings(
            PAR_EVENTING_SERVICE_URL_TEMPLATE=deliveries, PAR_EVENTING_ADMIN_TOKEN=admin_token,
            PAR_EVENTING_DEAD_LETTERS=self.data_dir / "dead-letters.sqlite3",  # `par events dlq`
        )
        bootstrap = settings.kafka_bootstrap_servers
        if not bootstrap:
            self._kafka = EmbeddedKafka()
            async with asyncio.timeout(30):
                bootstrap = await self._kafka.astart()  # spawned on the platform's own (main) thread
        return create_app(settings, bootstrap)

    def _gateway_key(self) -> str:
        """The gateway's own key (kept in the data folder, mode 0600, so restarts reuse it): it can
        read the registry's snapshot feed and nothing else, never deploy or mint keys."""
        path = self.data_dir / "gateway.key"
        try:
            key = path.read_text().strip()
        except OSError:
            key = ""
        if not key:
            from gateway.apikeys import generate_key

            key = generate_key()[1]
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(key + "\n")
        return key

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
        if self.grpc_front is not None:
            await self.grpc_front.stop()
            self.grpc_front = None
        for served in reversed(self._served):
            await served.stop()
        self._served.clear()
        await self.serving.close()
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
            platform.serving.kill_all_now()
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
