"""What the local backend runs: one prepared revision of an agent and its scaling bounds.

Field names and defaults mirror Knative Serving's annotations and Revision spec
(`autoscaling.knative.dev/min-scale`, `max-scale`, `target`, `containerConcurrency`), so the
same deployment means the same thing on one machine and on a cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class RevisionSpec:
    namespace: str
    agent: str
    version: str
    package_dir: Path  # prepared by `par runtime prepare` at deploy time
    env: Mapping[str, str] = field(default_factory=dict)
    min_scale: int = 0
    max_scale: int = 0  # 0: no limit but the machine's (LocalSettings.max_instances_per_revision)
    target: int = 100  # Knative's container-concurrency-target-default
    container_concurrency: int = 0  # 0: unlimited, as in Knative

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.namespace, self.agent, self.version)

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.agent}@{self.version}"
