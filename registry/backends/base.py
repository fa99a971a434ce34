"""The deploy backend interface: what the registry asks of whatever runs agents.

The registry owns agents, versions and traffic; a backend turns one agent's *desired state*
(`DeploymentSpec`) into running instances and reports what it observes (`DeploymentStatus`).
Two implementations exist: `registry.backends.knative` (Knative Services through the Kubernetes
API) and the one-machine backend under `registry.backends.local` (runtime processes).

Rules every backend keeps, because the registry relies on them:
- `deploy` is idempotent: applying the same spec twice changes nothing; a new spec for the same
  `(namespace, agent)` replaces the old one (new versions, traffic, scaling, env) in place.
- `deploy` returns quickly with the first observed status; readiness arrives through `watch`.
- `undeploy` of something that is not deployed is not an error.
- `status` of something never deployed returns phase `absent`, never raises for that.
- `watch` yields the current status first, then each *change*, and stops by itself once the
  phase is `ready`, `failed` or `absent`, after `max_wait` seconds, or when the caller stops.
- `follow` is what the registry records: `watch` unless the backend's status keeps changing
  after `ready` with no new deploy (see `DeployBackend.follow`).
- Failures to reach the backend itself raise `BackendError` (`registry.backends.errors`); the
  registry turns that into 503. A refusal of the desired state itself raises `BackendRejected` (a
  BackendError), which is 422; so is `BackendMissing`, something the state needs that is not on
  the cluster (a kind not installed, a namespace the registry may not create), never a 503.
- The spec types (`DeploymentSpec`, `TriggerSpec`, `DeploymentStatus`, ...) live in `registry.spec`,
  below both this interface and Knative's object model (`registry.knative`).
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from registry.backends.errors import BackendRejected
from registry.spec import DeploymentSpec, DeploymentStatus, LogRequest, TriggerSpec

if TYPE_CHECKING:
    from serving import ServiceStatus


class DeployBackend(abc.ABC):
    """What the registry calls. Implementations must be safe to call concurrently."""

    name: str = "abstract"

    @abc.abstractmethod
    async def deploy(self, spec: DeploymentSpec) -> DeploymentStatus:
        """Create or update the agent's instances to match `spec`; return the first status."""

    @abc.abstractmethod
    async def undeploy(self, namespace: str, agent: str) -> None:
        """Remove the agent's instances (and its triggers' subscriptions to it are left alone)."""

    @abc.abstractmethod
    async def status(self, namespace: str, agent: str) -> DeploymentStatus:
        """The currently observed status; phase `absent` when nothing is deployed."""

    @abc.abstractmethod
    def watch(self, namespace: str, agent: str, max_wait: float = 300.0) -> AsyncIterator[DeploymentStatus]:
        """Current status, then each change, until a terminal phase or `max_wait` seconds."""

    def follow(self, namespace: str, agent: str, max_wait: float = 300.0) -> AsyncIterator[DeploymentStatus]:
        """The statuses the registry stores for a deployment: `watch` by default. A backend whose
        status goes on changing after `ready` (on one machine instances start, idle out, crash
        and are replaced) overrides this to keep yielding changes until the agent is `absent` or
        the caller stops, so that the stored status stays current."""
        return self.watch(namespace, agent, max_wait)

    @abc.abstractmethod
    async def apply_trigger(self, spec: TriggerSpec) -> None:
        """Create or update a trigger (and the broker it names, if missing)."""

    @abc.abstractmethod
    async def delete_trigger(self, namespace: str, name: str) -> None:
        """Remove a trigger; not an error when absent."""

    def instances(self, namespace: str, agent: str) -> ServiceStatus | None:
        """Instances, restarts and the last error per revision when this backend runs them
        itself (one machine); None when another system does (Knative: its conditions say it)."""
        return None

    async def logs(self, namespace: str, agent: str, request: LogRequest) -> AsyncIterator[dict[str, Any]]:
        """The agent's output lines, oldest first, each `{"time", "agent", "version", "instance",
        "line"}`; with `request.follow`, then every new line (new instances included) until the
        caller stops. Checks what it can before returning, so that errors are HTTP answers and
        not a broken stream."""
        raise BackendRejected(f"the {self.name} backend keeps no agent logs")

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release connections; called once when the registry stops."""
