"""A backend that only records what it is asked, for a registry with nowhere to run agents yet.

It reports a deployment ready at once, at the URL Knative would give it
(`http://{agent}.{namespace}.{domain}`), so the registry's deploy flow, status and CLI work end to
end; nothing actually runs. `calls` keeps every request in order for inspection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from gateway.hosts import agent_host
from registry.backends.base import DeployBackend
from registry.spec import Condition, DeploymentSpec, DeploymentStatus, Phase, TriggerSpec

_READY = (
    Condition(type="ConfigurationsReady", status="True"),
    Condition(type="RoutesReady", status="True"),
    Condition(type="Ready", status="True"),
)


class RecordingBackend(DeployBackend):
    name = "recording"

    def __init__(self, domain: str = "example.com") -> None:
        self.domain = domain
        self.calls: list[tuple[str, object]] = []
        self.deployments: dict[tuple[str, str], DeploymentSpec] = {}
        self.triggers: dict[tuple[str, str], TriggerSpec] = {}
        self._lock = asyncio.Lock()

    async def deploy(self, spec: DeploymentSpec) -> DeploymentStatus:
        async with self._lock:
            self.calls.append(("deploy", spec))
            self.deployments[(spec.namespace, spec.agent)] = spec
        return self._observed(spec.namespace, spec.agent)

    async def undeploy(self, namespace: str, agent: str) -> None:
        async with self._lock:
            self.calls.append(("undeploy", (namespace, agent)))
            self.deployments.pop((namespace, agent), None)

    async def status(self, namespace: str, agent: str) -> DeploymentStatus:
        return self._observed(namespace, agent)

    async def watch(
        self, namespace: str, agent: str, max_wait: float = 300.0
    ) -> AsyncIterator[DeploymentStatus]:
        yield self._observed(namespace, agent)

    async def apply_trigger(self, spec: TriggerSpec) -> None:
        async with self._lock:
            self.calls.append(("apply_trigger", spec))
            self.triggers[(spec.namespace, spec.name)] = spec

    async def delete_trigger(self, namespace: str, name: str) -> None:
        async with self._lock:
            self.calls.append(("delete_trigger", (namespace, name)))
            self.triggers.pop((namespace, name), None)

    def _observed(self, namespace: str, agent: str) -> DeploymentStatus:
        spec = self.deployments.get((namespace, agent))
        if spec is None:
            return DeploymentStatus(phase=Phase.absent)
        return DeploymentStatus(
            phase=Phase.ready,
            url=f"http://{agent_host(agent, namespace, self.domain)}",
            conditions=_READY,
            generation=spec.generation,
        )
