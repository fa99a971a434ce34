"""The desired and observed state of one agent, the words every layer of the registry shares.

`DeploymentSpec` (what the registry wants running: versions, traffic, scaling, env, resources),
`TriggerSpec` (a Knative Trigger) and `DeploymentStatus` (what a backend observes, in Knative's
conditions). These are plain values, below both the Knative object model (`registry.knative`,
which turns them into Knative's objects) and the deploy backends (`registry.backends`, which
apply them): they import nothing of the registry.
"""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
    timeout_seconds: int = Field(
        300, ge=1
    )  # per-request timeout (<= the cluster max: knative.admission)


class Resources(_Frozen):
    """Kubernetes compute resources, `cpu` and `memory` as quantities (`500m`, `256Mi`): what a
    deployment asked (`par deploy --request/--limit`). What it leaves out is the platform's
    default (`registry.knative.resources.resolve`: Knative manifests) or the machine's (one machine)."""

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


class LogRequest(_Frozen):
    """What `par logs` asks of a backend: an agent's output lines, as `kubectl logs` would."""

    version: str | None = None  # only this version's instances
    instance: str | None = None  # only this instance (a pod's name on Knative)
    since_seconds: float | None = Field(None, gt=0)  # lines from the last N seconds
    tail: int | None = Field(None, ge=0)  # the last N lines (before following)
    follow: bool = False  # keep streaming new lines, from instances old and new
