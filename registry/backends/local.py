"""The registry's deploy backend for one machine: a thin adapter over `serving` (the local
Knative Serving). `DeploymentSpec` -> prepared revisions applied to the serving `Controller`;
its typed `ServiceStatus` -> Knative-style conditions; triggers -> the local eventing admin API.

`deploy` returns at once (phase `deploying` while packages are prepared, with the preparation's
output as the status message); the revision becomes `ready` as soon as it can serve, which for
min-scale 0 means prepared and scaled to zero, exactly like a Knative revision with no traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.hosts import DEFAULT_DOMAIN, agent_host
from registry.backends.base import DeployBackend
from registry.backends.eventing_admin import EventingAdmin
from registry.spec import (
    Condition,
    DeploymentSpec,
    DeploymentStatus,
    LogRequest,
    Phase,
    TriggerSpec,
    VersionTarget,
)
from runtime import quantity
from serving import Controller, Limits, RevisionSpec, ServiceStatus

COALESCE_SECONDS = 0.2  # after ready, one status for a burst of instance changes


@dataclass
class _Rollout:
    spec: DeploymentSpec
    task: asyncio.Task[None] | None = None
    message: str | None = None
    error: str | None = None


class LocalBackend(DeployBackend):
    name = "local"

    def __init__(
        self,
        serving: Controller,
        *,
        domain: str = DEFAULT_DOMAIN,
        port: int = 8080,  # the gateway's
        eventing_admin_url: str | None = None,
        eventing_admin_token: str | None = None,
    ) -> None:
        self.serving = serving
        self._domain, self._port = domain, port
        self._eventing = (
            EventingAdmin(eventing_admin_url, eventing_admin_token) if eventing_admin_url else None
        )
        self._rollouts: dict[tuple[str, str], _Rollout] = {}

    async def deploy(self, spec: DeploymentSpec) -> DeploymentStatus:
        await self.serving.start()
        key = (spec.namespace, spec.agent)
        current = self._rollouts.get(key)
        if current is not None and current.spec == spec and current.error is None:
            return await self.status(*key)  # idempotent: same spec, nothing to do
        if current is not None and current.task is not None:
            current.task.cancel()
        rollout = _Rollout(spec, message="preparing")
        self._rollouts[key] = rollout
        rollout.task = asyncio.create_task(self._roll_out(rollout))
        await asyncio.sleep(0)  # already-prepared versions apply without a round trip
        return await self.status(*key)

    async def _roll_out(self, rollout: _Rollout) -> None:
        spec = rollout.spec
        try:
            revisions = [await self._revision(spec, target) for target in spec.versions]
            await self.serving.apply(
                spec.namespace, spec.agent, revisions, {v.version: v.percent for v in spec.versions},
                tags={v.tag: v.version for v in spec.versions if v.tag},
            )
            rollout.message = None
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # reported as phase `failed` with the cause
            rollout.error = str(exc)
        finally:
            rollout.task = None
            self.serving.notify()

    async def _revision(self, spec: DeploymentSpec, target: VersionTarget) -> RevisionSpec:
        def progress(line: str) -> None:
            rollout = self._rollouts.get((spec.namespace, spec.agent))
            if rollout is not None:
                rollout.message = f"{target.version}: {line}"
                self.serving.notify()

        source = target.artifact_path or target.artifact_url
        package_dir = await self.serving.preparer.prepare(target.sha256, source, progress)
        scaling = spec.scaling
        # Knative's timeoutSeconds is enforced by its queue-proxy; here the runtime enforces it.
        env = {"PAR_REQUEST_TIMEOUT_SEC": str(scaling.timeout_seconds)}
        if spec.k_sink:
            env["K_SINK"] = spec.k_sink
        return RevisionSpec(
            namespace=spec.namespace,
            agent=spec.agent,
            version=target.version,
            package_dir=package_dir,
            env={**env, **spec.env},
            min_scale=scaling.min_scale,
            max_scale=scaling.max_scale or 0,
            target=scaling.target or 100,
            container_concurrency=scaling.container_concurrency,
            limits=_limits(spec),
        )

    async def undeploy(self, namespace: str, agent: str) -> None:
        rollout = self._rollouts.pop((namespace, agent), None)
        if rollout is not None and rollout.task is not None:
            rollout.task.cancel()
        await self.serving.remove(namespace, agent)

    async def status(self, namespace: str, agent: str) -> DeploymentStatus:
        rollout = self._rollouts.get((namespace, agent))
        if rollout is None:
            return DeploymentStatus(phase=Phase.absent)
        generation = rollout.spec.generation
        if rollout.error is not None:
            return DeploymentStatus(
                phase=Phase.failed, message=rollout.error, generation=generation,
                conditions=(Condition(type="Ready", status="False", reason="PrepareFailed",
                                      message=rollout.error),),
            )
        observed = self.serving.status(namespace, agent)
        if rollout.task is not None or observed is None:
            return DeploymentStatus(
                phase=Phase.deploying, message=rollout.message, generation=generation,
                conditions=(Condition(type="Ready", status="Unknown", reason="Preparing",
                                      message=rollout.message),),
            )
        return self._observed(observed, generation)

    def instances(self, namespace: str, agent: str) -> ServiceStatus | None:
        return self.serving.status(namespace, agent)

    def _observed(self, observed: ServiceStatus, generation: int) -> DeploymentStatus:
        """Map serving's view onto Knative conditions: `Ready`, and `Active` (False with
        reason NoTraffic when scaled to zero, as a Knative revision reports it)."""
        ready = observed.ready
        summary = _summary(observed)
        url = f"http://{agent_host(observed.name, observed.namespace, self._domain)}:{self._port}"
        conditions = (
            Condition(type="Ready", status="True" if ready else "False",
                      reason=None if ready else "InstanceFailing", message=observed.reason),
            Condition(type="Active", status="True" if observed.instances else "False",
                      reason="Running" if observed.instances else "NoTraffic", message=summary),
        )
        return DeploymentStatus(
            phase=Phase.ready if ready else Phase.failed,
            url=url,
            conditions=conditions,
            message=summary if ready else f"{observed.reason} ({summary})",
            generation=generation,
        )

    def watch(self, namespace: str, agent: str, max_wait: float = 300.0) -> AsyncIterator[DeploymentStatus]:
        return self._changes(namespace, agent, time.monotonic() + max_wait)

    def follow(self, namespace: str, agent: str, max_wait: float = 300.0) -> AsyncIterator[DeploymentStatus]:
        """Past `ready` too: instances start, idle out, crash and are replaced, and `par agents
        get` shows it. Ends once the agent is absent (undeployed) or the caller stops."""
        return self._changes(namespace, agent, None)

    async def _changes(
        self, namespace: str, agent: str, deadline: float | None
    ) -> AsyncIterator[DeploymentStatus]:
        """The current status, then each change: until terminal or `deadline`, or (no deadline)
        until absent; once settled, a burst of changes is coalesced into one status."""
        last: DeploymentStatus | None = None
        while True:
            seen = self.serving.generation
            current = await self.status(namespace, agent)
            if current != last:
                yield current
                last = current
            if deadline is None:
                if current.phase == Phase.absent:
                    return
                await self.serving.wait_changed(seen)
                if current.terminal:
                    await asyncio.sleep(COALESCE_SECONDS)
                continue
            remaining = deadline - time.monotonic()
            if current.terminal or remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self.serving.wait_changed(seen)

    async def apply_trigger(self, spec: TriggerSpec) -> None:
        if self._eventing is not None:
            await self._eventing.apply_trigger(spec)

    async def delete_trigger(self, namespace: str, name: str) -> None:
        if self._eventing is not None:
            await self._eventing.delete_trigger(namespace, name)

    async def logs(self, namespace: str, agent: str, request: LogRequest) -> AsyncIterator[dict[str, Any]]:
        """From the files serving writes under `<data dir>/logs/` (`serving.read_logs`)."""
        from serving import LogQuery, follow_logs, read_logs

        folder = self.serving.settings.data_dir / "logs"
        since = None
        if request.since_seconds is not None:
            since = datetime.now(UTC) - timedelta(seconds=request.since_seconds)
        query = LogQuery(namespace, agent, request.version, request.instance, since, request.tail)
        if request.follow:
            return follow_logs(folder, query)
        records = await asyncio.to_thread(read_logs, folder, query)

        async def stored() -> AsyncIterator[dict[str, Any]]:
            for record in records:
                yield record

        return stored()

    async def aclose(self) -> None:
        for rollout in self._rollouts.values():
            if rollout.task is not None:
                rollout.task.cancel()
        if self._eventing is not None:
            await self._eventing.aclose()


def _limits(spec: DeploymentSpec) -> Limits:
    """The deployment's `limits.memory` and `limits.cpu` for each instance; what it leaves out is
    the machine's default (PAR_INSTANCE_MEMORY_LIMIT, PAR_INSTANCE_CPU_LIMIT). Requests reserve
    nothing on one machine."""
    memory, cpu = spec.resources.limits.get("memory"), spec.resources.limits.get("cpu")
    return Limits(
        memory_bytes=quantity.to_bytes(memory) if memory else None,
        cpu_millis=quantity.to_millicores(cpu) if cpu else None,
    )


def _summary(observed: ServiceStatus) -> str:
    """One line for `par agents get`: instances per version, restarts, the last error, and
    what confines the instances."""
    parts = []
    for rev in observed.revisions:
        states: dict[str, int] = {}
        for inst in rev.instances:
            states[inst.state] = states.get(inst.state, 0) + 1
        shown = ", ".join(f"{n} {s}" for s, n in states.items()) or "scaled to zero"
        extra = f", {rev.restarts} restarts" if rev.restarts else ""
        if rev.last_error and not rev.healthy:
            error = f", last error: {rev.last_error}"
        elif rev.last_error and rev.restarts:  # replaced since; why it went, as Kubernetes' Last State
            error = f", last exit: {rev.last_error}"
        else:
            error = ""
        parts.append(f"{rev.version}: {shown}{extra}{error}")
    confinement = {rev.confinement for rev in observed.revisions}
    return "; ".join([*parts, *sorted(confinement)])
