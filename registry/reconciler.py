"""The registry's one reconciler: the only part that talks to the deploy backend.

It turns a stored deployment into a `DeploymentSpec` and a stored trigger into a `TriggerSpec`,
hands them to the backend (deploy, undeploy, apply or delete a trigger) and follows the result.
After `apply`, a watcher task per agent copies the backend's observed status (phase, URL,
conditions, failure reason) into the database for as long as the backend's `follow` yields
(until terminal, or on one machine for as long as the agent is deployed); a newer deploy of the
same agent replaces the watcher, and a status for an older generation is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.artifacts import ArtifactStore
from registry.backends.base import DeployBackend
from registry.backends.errors import BackendError
from registry.db import Database
from registry.knative import admission, manifests
from registry.knative.naming import revision_name, target_revision, target_tag
from registry.models import Agent, Deployment, Trigger, Version
from registry.settings import RegistrySettings
from registry.spec import DeploymentSpec, DeploymentStatus, Resources, Scaling, TriggerSpec, VersionTarget

log = logging.getLogger("registry.reconciler")
RESYNC_TRIGGERS_AT_ONCE = 16


def record(deployment: Deployment, status: DeploymentStatus) -> None:
    deployment.phase = status.phase.value
    deployment.url = status.url
    deployment.conditions = [c.model_dump(exclude_none=True) for c in status.conditions]
    deployment.last_error = status.message


def template_config(spec: DeploymentSpec) -> str:
    """A digest of what a revision is made of besides its package (Knative revisions are immutable).
    Resources count once a deployment asks for some (earlier digests stay as they were)."""
    include = {"scaling", "env", "k_sink", "cluster_local"}
    if spec.resources != Resources():
        include.add("resources")
    fields = spec.model_dump(include=include, mode="json")
    # Visibility is a label of the Service, not of its template: changing it needs no new revision
    # (nor new pods). Always False here, so that earlier digests stay as they were.
    fields["cluster_local"] = False
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


def name_revision(deployment: Deployment, spec: DeploymentSpec) -> bool:
    """Give the template's version a revision name matching its configuration: `{agent}-{slug}`
    the first time, `{agent}-{slug}-g{generation}` when redeployed with another configuration
    (Knative refuses a changed template under an existing revision's name). True if it changed."""
    serving = [v for v in spec.versions if v.percent > 0] or list(spec.versions)
    version = serving[-1].version
    config = template_config(spec)
    known = deployment.revisions.get(version)
    if known is not None and known["config"] == config:
        return False
    suffix = None if known is None else f"g{deployment.generation}"
    name = revision_name(spec.agent, version, suffix)
    deployment.revisions = {**deployment.revisions, version: {"name": name, "config": config}}
    return name != serving[-1].revision


def trigger_spec(row: Trigger) -> TriggerSpec:
    return TriggerSpec(
        namespace=row.namespace,
        name=row.name,
        broker=row.broker,
        filters=row.filters,
        dialect_filters=row.dialect_filters,
        subscriber_agent=row.subscriber_agent,
        subscriber_uri=row.subscriber_uri,
        delivery=row.delivery,
        ordering=row.ordering,
    )


@contextlib.contextmanager
def _skipped_if_refused(what: str) -> Iterator[None]:
    """A stored object that today's rules refuse (stored before they existed) is reported, not fatal."""
    try:
        yield
    except admission.Refused as exc:
        log.warning("not applied: refused by Knative's rules", extra={"object": what, "error": str(exc)})


class Reconciler:
    def __init__(
        self, settings: RegistrySettings, db: Database, store: ArtifactStore, backend: DeployBackend
    ) -> None:
        self.settings = settings
        self.db = db
        self.store = store
        self.backend = backend
        self.options = manifests.options_from(settings)
        self.limits = admission.limits_from(settings)
        self._watchers: dict[tuple[str, str], asyncio.Task[None]] = {}

    def k_sink(self, namespace: str, broker: str | None) -> str | None:
        if not broker:
            return None
        return self.settings.broker_ingress_url.format(namespace=namespace, broker=broker)

    async def spec(self, session: AsyncSession, agent: Agent, deployment: Deployment) -> DeploymentSpec:
        """The desired state as stored, with each version's current revision name."""
        wanted = [t["version"] for t in deployment.traffic]
        rows = await session.scalars(
            select(Version).where(Version.agent_id == agent.id, Version.version.in_(wanted))
        )
        versions = {v.version: v for v in rows}
        # Oldest upload first, as DeploymentSpec promises (the newest serving version is the template).
        traffic = sorted(deployment.traffic, key=lambda t: versions[t["version"]].id)
        targets = tuple(
            VersionTarget(
                version=t["version"],
                revision=target_revision(deployment.revisions, agent.name, t["version"]),
                percent=t["percent"],
                sha256=versions[t["version"]].sha256,
                artifact_url=self.store.url(versions[t["version"]].sha256),
                artifact_path=str(self.store.path(versions[t["version"]].sha256)),
                tag=target_tag(t),
            )
            for t in traffic
        )
        return DeploymentSpec(
            namespace=agent.namespace,
            agent=agent.name,
            versions=targets,
            scaling=Scaling(
                min_scale=deployment.min_scale,
                max_scale=deployment.max_scale,
                target=deployment.target,
                container_concurrency=deployment.container_concurrency,
                timeout_seconds=deployment.timeout_seconds,
            ),
            env=dict(deployment.env),
            resources=Resources(**(deployment.resources or {})),
            broker=deployment.broker,
            k_sink=self.k_sink(agent.namespace, deployment.broker),
            cluster_local=deployment.cluster_local,
            generation=deployment.generation,
        )

    async def apply(self, session: AsyncSession, agent: Agent, deployment: Deployment) -> None:
        """Send the desired state to the backend; a BackendError, or `admission.Refused` for what
        Knative's webhook would refuse (whatever the backend), leaves the transaction to roll back."""
        spec = await self.spec(session, agent, deployment)
        if name_revision(deployment, spec):
            spec = await self.spec(session, agent, deployment)
        admission.check_service(manifests.service(spec, self.options), self.limits)
        record(deployment, await self.backend.deploy(spec))

    async def undeploy(self, namespace: str, agent: str) -> None:
        """Remove what runs the agent, then stop following it (a refusal leaves both as they were)."""
        await self.backend.undeploy(namespace, agent)
        watcher = self._watchers.pop((namespace, agent), None)
        if watcher is not None:
            watcher.cancel()

    async def apply_trigger(self, row: Trigger) -> None:
        """Apply a trigger; `admission.Refused` (nothing sent) for what Knative would refuse."""
        spec = trigger_spec(row)
        admission.check_broker(manifests.broker(spec.namespace, spec.broker, self.options))
        admission.check_trigger(manifests.trigger(spec))
        await self.backend.apply_trigger(spec)

    async def delete_trigger(self, namespace: str, name: str) -> None:
        await self.backend.delete_trigger(namespace, name)

    def follow(self, namespace: str, agent: str, generation: int) -> None:
        """Start (or restart) the watcher that keeps this agent's stored status current."""
        key = (namespace, agent)
        previous = self._watchers.pop(key, None)
        if previous is not None:
            previous.cancel()
        task = asyncio.create_task(self._follow(namespace, agent, generation))
        self._watchers[key] = task
        task.add_done_callback(lambda t: self._watchers.get(key) is t and self._watchers.pop(key))

    async def _follow(self, namespace: str, name: str, generation: int) -> None:
        where = {"agent": f"{namespace}/{name}"}
        try:
            async for status in self.backend.follow(namespace, name, self.settings.watch_seconds):
                try:
                    if not await self._store(namespace, name, generation, status):
                        return
                except Exception:  # a database hiccup must not end status updates for good
                    log.exception("storing status failed", extra=where)
                    continue
                log.info("status", extra={**where, "phase": status.phase.value})
        except BackendError as exc:
            log.warning("watch failed", extra={**where, "error": str(exc)})
        except Exception:
            log.exception("watch crashed", extra=where)

    async def _store(self, namespace: str, name: str, generation: int, status: DeploymentStatus) -> bool:
        """Record `status`; False when the deployment is gone or a newer deploy owns it."""
        async with self.db.sessions() as session:
            named = select(Agent).where(Agent.namespace == namespace, Agent.name == name)
            agent = await session.scalar(named)
            deployment = await session.get(Deployment, agent.id) if agent else None
            if deployment is None or deployment.generation != generation:
                return False
            record(deployment, status)
            await session.commit()
        return True

    async def resync(self) -> tuple[int, int]:
        """Apply every stored deployment and trigger again, and follow the deployments: for a
        backend that keeps nothing across restarts (`par up`'s local backend). Returns how many."""
        async with self.db.sessions() as session:
            deployed = select(Agent, Deployment).join(Deployment, Deployment.agent_id == Agent.id)
            rows = (await session.execute(deployed)).all()
            for agent, deployment in rows:
                with _skipped_if_refused(f"{agent.namespace}/{agent.name}"):
                    await self.apply(session, agent, deployment)
            triggers = list(await session.scalars(select(Trigger)))
            # side by side (bounded): one after another, 200 Triggers held the platform's start
            slots = asyncio.Semaphore(RESYNC_TRIGGERS_AT_ONCE)

            async def apply_trigger(trigger: Trigger) -> None:
                async with slots:
                    with _skipped_if_refused(f"trigger {trigger.namespace}/{trigger.name}"):
                        await self.apply_trigger(trigger)

            await asyncio.gather(*(apply_trigger(trigger) for trigger in triggers))
            await session.commit()
            followed = [(agent.namespace, agent.name, deployment.generation) for agent, deployment in rows]
        for namespace, name, generation in followed:
            self.follow(namespace, name, generation)
        log.info("resynced", extra={"deployments": len(rows), "triggers": len(triggers)})
        return len(rows), len(triggers)

    async def resume(self) -> None:
        """After a restart, follow every deployment again: backends report changes after Ready
        too (a crash, drift by another field manager), not only the end of a rollout."""
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(Agent.namespace, Agent.name, Deployment.generation).join(
                    Deployment, Deployment.agent_id == Agent.id
                )
            )
            for namespace, name, generation in rows:
                self.follow(namespace, name, generation)

    async def close(self) -> None:
        tasks = list(self._watchers.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
