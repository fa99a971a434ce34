"""The process supervisor: Knative Serving's behaviour for every deployed agent on one machine.

It is the gateway's `Resolver`: the proxy holds `acquire(namespace, agent)` for a whole
exchange, so scale from zero, queueing and in-flight counting happen here. The deploy backend
(`backend.py`) tells it which revisions exist and how traffic is split between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from gateway.resolver import UnknownAgent

from .instance import Instance
from .pool import RevisionPool
from .settings import LocalSettings
from .spec import RevisionSpec
from .template import RuntimeTemplate, TemplateUnavailable
from .traffic import pick_version, validate_split

RUNTIME_COMMAND: tuple[str, ...] = (sys.executable, "-m", "runtime")
log = logging.getLogger("par.local")
TEMPLATE_RETRY_SECONDS = 30.0


@dataclass
class _Service:
    """One agent in one namespace: its revisions and how traffic is split between them."""

    revisions: dict[str, RevisionPool] = field(default_factory=dict)
    traffic: dict[str, int] = field(default_factory=dict)


class Supervisor:
    def __init__(
        self,
        settings: LocalSettings | None = None,
        *,
        command: Sequence[str] = RUNTIME_COMMAND,
    ) -> None:
        self.settings = settings or LocalSettings()
        self._command = tuple(command)
        self._services: dict[tuple[str, str], _Service] = {}
        self._rng = random.Random()
        self._client = httpx.AsyncClient()
        self._reaper: asyncio.Task[None] | None = None
        self._version = 0
        self._changed = asyncio.Event()
        self._template: RuntimeTemplate | None = None
        self._template_start: asyncio.Task[None] | None = None
        self._template_started = float("-inf")

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the idle reaper (idempotent)."""
        if self._reaper is None:
            self._reaper = asyncio.create_task(self._reap_forever())
        if self.settings.prefork and self._command == RUNTIME_COMMAND and self._template is None:
            self._renew_template()

    async def close(self) -> None:
        """Stop every instance; the platform calls this on Ctrl-C / SIGTERM."""
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        pools = [p for s in self._services.values() for p in s.revisions.values()]
        await asyncio.gather(*(p.close() for p in pools))
        self._services.clear()
        if self._template_start is not None:
            self._template_start.cancel()
        if self._template is not None:
            await self._template.close()
        await self._client.aclose()

    def kill_all_now(self) -> None:
        """Synchronous last resort (atexit, second Ctrl-C): SIGKILL every instance group."""
        for service in self._services.values():
            for pool in service.revisions.values():
                pool.kill_all_now()
        if self._template is not None:
            self._template.kill_now()

    async def __aenter__(self) -> Supervisor:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- resolver ---------------------------------------------------------------------------

    @asynccontextmanager
    async def acquire(self, namespace: str, agent: str) -> AsyncIterator[str]:
        """`gateway.resolver.Resolver`: a base URL of a ready instance, held for the exchange."""
        service = self._services.get((namespace, agent))
        if service is None or not service.traffic:
            raise UnknownAgent(f"agent {agent!r} not found in namespace {namespace!r}")
        pool = service.revisions[pick_version(service.traffic, self._rng)]
        async with pool.acquire() as url:
            yield url

    # -- deploy backend ---------------------------------------------------------------------

    async def apply(
        self, namespace: str, agent: str, revisions: Sequence[RevisionSpec], traffic: Mapping[str, int]
    ) -> None:
        """Make the agent's revisions and traffic split match; revisions whose spec did not
        change keep their running instances (so re-applying the same state changes nothing)."""
        split = validate_split(traffic, {r.version for r in revisions})
        service = self._services.setdefault((namespace, agent), _Service())
        stale = []
        pools: dict[str, RevisionPool] = {}
        for spec in revisions:
            current = service.revisions.get(spec.version)
            if current is not None and current.spec == spec:
                pools[spec.version] = current
            else:
                pools[spec.version] = self._pool(spec)
                if current is not None:
                    stale.append(current)
        stale += [p for v, p in service.revisions.items() if v not in pools]
        service.revisions, service.traffic = pools, split
        for version, pool in pools.items():
            pool.routed = split.get(version, 0) > 0
            pool.reconcile()  # min-scale > 0 starts warm instances now
        self.notify()
        await asyncio.gather(*(p.close() for p in stale))

    def _pool(self, spec: RevisionSpec) -> RevisionPool:
        return RevisionPool(spec, self._launch, self._client, self.settings, self.notify)

    async def remove(self, namespace: str, agent: str) -> None:
        """Stop every instance of the agent and forget it."""
        service = self._services.pop((namespace, agent), None)
        if service is not None:
            self.notify()
            await asyncio.gather(*(p.close() for p in service.revisions.values()))

    def status(self, namespace: str, agent: str) -> dict[str, Any] | None:
        """Knative-like status: a Ready condition, the traffic split and each revision's instances."""
        service = self._services.get((namespace, agent))
        if service is None:
            return None
        revisions = [pool.status() for pool in service.revisions.values()]
        routed = [r for r in revisions if service.traffic.get(r["version"], 0) > 0]
        failing = [r for r in routed if not r["healthy"]]
        return {
            "namespace": namespace,
            "name": agent,
            "traffic": [{"version": v, "percent": p} for v, p in service.traffic.items()],
            "ready": not failing,
            "reason": failing[0]["last_error"] if failing else None,
            "instances": sum(len(r["instances"]) for r in revisions),
            "revisions": revisions,
        }

    def statuses(self) -> list[dict[str, Any]]:
        return [s for key in sorted(self._services) if (s := self.status(*key)) is not None]

    @property
    def generation(self) -> int:
        """Increases with every observable change (instances, traffic, errors)."""
        return self._version

    async def wait_changed(self, seen: int) -> None:
        """Return once the generation differs from `seen`."""
        while self._version == seen:
            await self._changed.wait()

    # -- internals --------------------------------------------------------------------------

    def notify(self) -> None:
        """Wake `wait_changed` callers (pools call it on every state change)."""
        self._version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    @staticmethod
    def _base_env() -> dict[str, str]:
        """The platform's environment minus its own `PAR_*` settings (agents must not see them)."""
        return {k: v for k, v in os.environ.items() if not k.startswith("PAR_")}

    def _instance_env(self, spec: RevisionSpec) -> dict[str, str]:
        """The base environment plus Knative's variables, then the deployment's own env (which
        wins, as in the design's precedence)."""
        env = self._base_env()
        env.update(
            AGENT_PACKAGE_PATH=str(spec.package_dir),
            PAR_RUNTIME_HOST="127.0.0.1",  # loopback only: the gateway is the way in
            K_SERVICE=spec.agent,
            K_CONFIGURATION=spec.agent,
            K_REVISION=f"{spec.agent}-{spec.version}",
        )
        env.update(spec.env)
        return env

    async def _launch(self, spec: RevisionSpec) -> Instance:
        """Fork from the warm runtime template when it runs, else start `python -m runtime`."""
        log_path = self.settings.data_dir / "logs" / f"{spec.namespace}.{spec.agent}.{spec.version}.log"
        env = self._instance_env(spec)
        template = self._template
        if template is not None and template.ready:
            with contextlib.suppress(TemplateUnavailable):
                return await template.fork(env, log_path)
        if template is not None and self._template_start is not None and self._template_start.done():
            self._renew_template()  # it died or never started: try again, at most every 30 s
        return await Instance.spawn(self._command, env, log_path)

    def _renew_template(self) -> None:
        now = time.monotonic()
        if now - self._template_started < TEMPLATE_RETRY_SECONDS:
            return
        self._template_started = now
        if self._template is not None:
            self._template.kill_now()
        log_path = self.settings.data_dir / "logs" / "runtime-template.log"
        self._template = RuntimeTemplate(self._base_env(), log_path)
        self._template_start = asyncio.create_task(self._start_template(self._template))

    async def _start_template(self, template: RuntimeTemplate) -> None:
        try:
            await template.start()
        except Exception:  # instances are then started directly, only slower
            log.exception("runtime template failed to start")
            await template.close()

    async def _reap_forever(self) -> None:
        tick = min(1.0, max(self.settings.scale_to_zero_after / 4, 0.05))
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            pools = [p for s in list(self._services.values()) for p in list(s.revisions.values())]
            await asyncio.gather(*(pool.scale_down_idle(now) for pool in pools))
