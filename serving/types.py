"""The API types of the local Knative Serving: what is asked of it and what it reports.

`RevisionSpec` is the desired state of one revision; its field names and defaults mirror Knative
Serving's annotations and Revision spec (`autoscaling.knative.dev/min-scale`, `max-scale`,
`target`, `containerConcurrency`), so a deployment means the same on one machine and on a
cluster. `ServiceStatus` > `RevisionStatus` > `InstanceStatus` is what it observes, typed, so
the registry's adapter and the `/status` endpoint read fields rather than string keys.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Limits:
    """What one instance may use, from the deployment's Knative `resources.limits` and the
    platform's settings. Over memory: killed (OOMKilled); over CPU: throttled."""

    memory_bytes: int | None = None  # limits.memory; None: the platform's default applies
    cpu_millis: int | None = None  # limits.cpu in millicores
    max_processes: int = 256  # processes and threads (cgroup pids.max, else RLIMIT_NPROC)
    max_open_files: int = 1024  # RLIMIT_NOFILE
    max_file_bytes: int = 1 << 30  # RLIMIT_FSIZE: the largest file it may write


@dataclass(frozen=True)
class RevisionSpec:
    namespace: str
    agent: str
    version: str
    package_dir: Path  # prepared by `par runtime prepare` at deploy time
    env: Mapping[str, str] = field(default_factory=dict)
    min_scale: int = 0
    max_scale: int = 0  # 0: no limit but the machine's (ServingSettings.max_instances_per_revision)
    target: int = 100  # Knative's container-concurrency-target-default
    container_concurrency: int = 0  # 0: unlimited, as in Knative
    limits: Limits = Limits()

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.namespace, self.agent, self.version)

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.agent}@{self.version}"


class InstanceState(enum.StrEnum):
    STARTING = "starting"
    READY = "ready"
    STOPPING = "stopping"
    EXITED = "exited"


@dataclass(frozen=True)
class InstanceStatus:
    pid: int
    port: int
    state: InstanceState
    in_flight: int
    idle_s: float  # seconds since its last request ended
    id: str = ""  # as its log lines name it (`par logs --instance`)


@dataclass(frozen=True)
class RevisionStatus:
    version: str
    desired: int  # the autoscaler's current wish
    instances: tuple[InstanceStatus, ...]
    starting: int  # processes being spawned (no pid yet)
    queued: int  # requests held by the activator
    restarts: int
    healthy: bool  # False from a failure until an instance is ready again
    last_error: str | None
    confinement: str  # what confines its instances ("filesystem, network, signals, ..." or "unconfined")


@dataclass(frozen=True)
class ServiceStatus:
    """One agent: Knative's Ready (no routed revision failing) and its revisions' instances."""

    namespace: str
    name: str
    traffic: tuple[tuple[str, int], ...]  # (version, percent)
    ready: bool
    reason: str | None  # the first failing routed revision's last error
    revisions: tuple[RevisionStatus, ...]

    @property
    def instances(self) -> int:
        return sum(len(r.instances) for r in self.revisions)

    def as_json(self) -> dict[str, Any]:
        """The `/status` shape (traffic as `{version, percent}` objects, an instance count)."""
        body = asdict(self)
        body["traffic"] = [{"version": v, "percent": p} for v, p in self.traffic]
        body["instances"] = self.instances
        return body
