"""The serving controller: each agent's desired revisions and traffic, reconciled on one machine.

Knative's Service controller turns a Service into revisions and a route; here `apply` makes the
agent's revisions and traffic split match what the registry asks (a revision whose spec did not
change keeps its instances), an idle reaper scales revisions down to min-scale, and `status`
reports what runs. Requests reach the revisions through `self.activator` (the data plane).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx

from gateway.resolver import UnknownAgent

from .activator import Activator
from .launcher import RUNTIME_COMMAND, Launcher
from .preparation import Preparer
from .revision import Revision
from .sandbox import Confiner
from .settings import ServingSettings
from .traffic import pick_version, validate_split, validate_tags
from .types import RevisionSpec, ServiceStatus


@dataclass
class _Service:
    """One agent in one namespace: its revisions and how traffic is split between them."""

    revisions: dict[str, Revision] = field(default_factory=dict)
    traffic: dict[str, int] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)  # traffic tag -> version, routed by name


class Controller:
    def __init__(
        self,
        settings: ServingSettings | None = None,
        *,
        command: Sequence[str] = RUNTIME_COMMAND,
        connect_ports: Sequence[int] = (),
    ) -> None:
        """`connect_ports`: platform ports every instance may call (the gateway's)."""
        self.settings = settings or ServingSettings()
        self.confiner = Confiner(
            self.settings.data_dir / "instances",
            required=self.settings.isolation == "required",
            outbound_ports=self.settings.outbound_ports,
            connect_ports=tuple(connect_ports),
            defaults=self.settings.default_limits(),
        )
        self.preparer = Preparer(
            self.settings.data_dir / "prepared", self.confiner, self.settings.prepare_limits(),
            self.settings.prepare_timeout,
        )
        self._launcher = Launcher(self.settings, self.confiner, command)
        self._services: dict[tuple[str, str], _Service] = {}
        self._rng = random.Random()
        self._client = httpx.AsyncClient()
        self._reaper: asyncio.Task[None] | None = None
        self._version = 0
        self._changed = asyncio.Event()
        self.activator = Activator(self.route, self.settings.request_queue_timeout)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the idle reaper and the runtime template (idempotent)."""
        if self._reaper is None:
            self._reaper = asyncio.create_task(self._reap_forever())
        self._launcher.start()

    async def close(self) -> None:
        """Stop every instance; the platform calls this on Ctrl-C / SIGTERM."""
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        await asyncio.gather(*(r.close() for r in self._revisions()))
        self._services.clear()
        await self._launcher.close()
        await self._client.aclose()

    def kill_all_now(self) -> None:
        """Synchronous last resort (atexit, second Ctrl-C): SIGKILL every instance group."""
        for revision in self._revisions():
            revision.kill_all_now()
        self._launcher.kill_now()

    async def __aenter__(self) -> Controller:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- desired state ----------------------------------------------------------------------

    async def apply(
        self, namespace: str, agent: str, revisions: Sequence[RevisionSpec], traffic: Mapping[str, int],
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Make the agent's revisions, traffic split and tags (`{tag: version}`, each reachable on
        its own as Knative's tag routes are) match; revisions whose spec did not change keep their
        running instances (so re-applying the same state changes nothing)."""
        split = validate_split(traffic, {r.version for r in revisions})
        tags = validate_tags(tags or {}, {r.version for r in revisions})
        service = self._services.setdefault((namespace, agent), _Service())
        stale = []
        current_revisions: dict[str, Revision] = {}
        for spec in revisions:
            current = service.revisions.get(spec.version)
            if current is not None and current.spec == spec:
                current_revisions[spec.version] = current
            else:
                current_revisions[spec.version] = Revision(
                    spec, self._launcher.launch, self._client, self.settings, self.notify,
                    confinement=self.confiner.describe(),
                )
                if current is not None:
                    stale.append(current)
        stale += [r for v, r in service.revisions.items() if v not in current_revisions]
        service.revisions, service.traffic, service.tags = current_revisions, split, tags
        for version, revision in current_revisions.items():
            revision.routed = split.get(version, 0) > 0
            revision.reconcile()  # min-scale > 0 starts warm instances now
        self.notify()
        await asyncio.gather(*(r.close() for r in stale))

    async def remove(self, namespace: str, agent: str) -> None:
        """Stop every instance of the agent and forget it."""
        service = self._services.pop((namespace, agent), None)
        if service is not None:
            self.notify()
            await asyncio.gather(*(r.close() for r in service.revisions.values()))

    def route(self, namespace: str, agent: str, tag: str | None = None) -> Revision:
        """The revision one request goes to: the tag's, else by the traffic split (the
        activator's routing)."""
        service = self._services.get((namespace, agent))
        if service is None or not service.traffic:
            raise UnknownAgent(f"agent {agent!r} not found in namespace {namespace!r}")
        if tag is None:
            return service.revisions[pick_version(service.traffic, self._rng)]
        try:
            return service.revisions[service.tags[tag]]
        except KeyError:
            raise UnknownAgent(f"agent {agent!r} in namespace {namespace!r} has no tag {tag!r}") from None

    # -- observed state ---------------------------------------------------------------------

    def status(self, namespace: str, agent: str) -> ServiceStatus | None:
        """Knative-like status: Ready, the traffic split and each revision's instances."""
        service = self._services.get((namespace, agent))
        if service is None:
            return None
        revisions = tuple(r.status() for r in service.revisions.values())
        routed = [r for r in revisions if service.traffic.get(r.version, 0) > 0]
        failing = [r for r in routed if not r.healthy]
        return ServiceStatus(
            namespace=namespace,
            name=agent,
            traffic=tuple(service.traffic.items()),
            ready=not failing,
            reason=failing[0].last_error if failing else None,
            revisions=revisions,
        )

    def statuses(self) -> list[ServiceStatus]:
        return [s for key in sorted(self._services) if (s := self.status(*key)) is not None]

    @property
    def generation(self) -> int:
        """Increases with every observable change (instances, traffic, errors)."""
        return self._version

    async def wait_changed(self, seen: int) -> None:
        """Return once the generation differs from `seen`."""
        while self._version == seen:
            await self._changed.wait()

    def notify(self) -> None:
        """Wake `wait_changed` callers (revisions call it on every state change)."""
        self._version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    # -- internals --------------------------------------------------------------------------

    def _revisions(self) -> list[Revision]:
        return [r for s in list(self._services.values()) for r in list(s.revisions.values())]

    async def _reap_forever(self) -> None:
        tick = min(1.0, max(self.settings.scale_to_zero_after / 4, 0.05))
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            await asyncio.gather(*(revision.scale_down_idle(now) for revision in self._revisions()))
