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
- Failures to reach the backend itself raise `BackendError`; the registry turns that into 503.
  A refusal of the desired state itself raises `BackendRejected` (a BackendError), which is 422.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from serving import ServiceStatus


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VersionTarget(_Frozen):
    """One version of the agent taking a share of the traffic."""

    version: str  # agent.yaml metadata.version, e.g. "0.1.0"
    revision: str  # stable per-version name, `{agent}-{version slug}` (Knative revision name)
    percent: int = Field(ge=0, le=100)
    sha256: str  # of the APKG; the runtime checks it (PACKAGE_SHA256)
    artifact_url: str  # where the runtime downloads the APKG (PACKAGE_URL): GET /v1/artifacts/{sha256}
    artifact_path: str | None = None  # the same bytes on this machine's disk, when the registry is local
    tag: str | None = None  # Knative traffic tag, e.g. "v0-1-0" -> reachable as tag-agent.ns.domain


class Scaling(_Frozen):
    """Knative autoscaling knobs, with Knative's names and defaults (min-scale 0 = scale to zero)."""

    min_scale: int = Field(0, ge=0)  # autoscaling.knative.dev/min-scale
    max_scale: int | None = Field(None, ge=0)  # autoscaling.knative.dev/max-scale (None/0 = unbounded)
    target: int | None = Field(None, ge=1)  # autoscaling.knative.dev/target (concurrent requests)
    container_concurrency: int = Field(0, ge=0)  # hard per-instance limit; 0 = unlimited
    timeout_seconds: int = Field(300, ge=1)  # per-request timeout (<= the cluster max: registry.admission)


class Resources(_Frozen):
    """Kubernetes compute resources, `cpu` and `memory` as quantities (`500m`, `256Mi`): what a
    deployment asked (`par deploy --request/--limit`). What it leaves out is the platform's
    default (`registry.resources.resolve`: Knative manifests) or the machine's (one machine)."""

    requests: dict[str, str] = Field(default_factory=dict)
    limits: dict[str, str] = Field(default_factory=dict)


class DeploymentSpec(_Frozen):
    """Everything a backend needs to run one agent; nothing backend-specific."""

    namespace: str
    agent: str
    # Oldest first (upload order); percents sum to 100. The newest version with percent > 0 is
    # the one a Knative Service's template carries; the others are earlier named revisions.
    versions: tuple[VersionTarget, ...]
    scaling: Scaling = Scaling()
    env: dict[str, str] = Field(default_factory=dict)  # the deployment's env (highest precedence)
    resources: Resources = Resources()  # the container's requests/limits, as asked
    broker: str | None = "default"  # the agent's K_SINK broker in its namespace; None = no K_SINK
    k_sink: str | None = None  # the resolved broker ingress URL for K_SINK (set by the registry)
    cluster_local: bool = False  # networking.knative.dev/visibility: cluster-local
    generation: int = 1  # increases with every deploy of this agent; echoed in status


class Phase(enum.StrEnum):
    absent = "absent"  # nothing deployed
    deploying = "deploying"  # applied, not ready yet
    ready = "ready"  # serving at `url`
    failed = "failed"  # will not become ready without a change; see `message`


class Condition(_Frozen):
    """A Knative-style condition (`Ready`, `ConfigurationsReady`, `RoutesReady`, ...)."""

    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str | None = None
    message: str | None = None


class DeploymentStatus(_Frozen):
    phase: Phase
    url: str | None = None  # where the agent answers once ready
    conditions: tuple[Condition, ...] = ()
    message: str | None = None  # the reason when failed (or why still deploying)
    generation: int | None = None  # the spec generation this status describes, when known

    @property
    def terminal(self) -> bool:
        return self.phase in (Phase.ready, Phase.failed, Phase.absent)


class TriggerSpec(_Frozen):
    """A Knative Trigger: events on `broker` matching `filters` are POSTed to the subscriber."""

    namespace: str
    name: str
    broker: str = "default"
    filters: dict[str, str] = Field(default_factory=dict)  # exact attribute matches (spec.filter.attributes)
    # Knative's `spec.filters` dialects (exact, prefix, suffix, all, any, not, cesql); all must match
    dialect_filters: list[dict[str, Any]] = Field(default_factory=list)
    subscriber_agent: str | None = None  # a Knative Service (agent) in the same namespace ...
    subscriber_uri: str | None = None  # ... or a URI used as is (exactly one of the two)
    delivery: dict[str, object] = Field(default_factory=dict)  # Knative DeliverySpec fields
    ordering: str | None = None  # "ordered" | "unordered" (kafka.eventing.knative.dev/delivery.order)


class BackendError(RuntimeError):
    """The backend itself could not be reached or refused the request (maps to HTTP 503)."""


class BackendRejected(BackendError):
    """The backend refused this desired state (e.g. a Kubernetes admission error; maps to HTTP 422)."""


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

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release connections; called once when the registry stops."""
