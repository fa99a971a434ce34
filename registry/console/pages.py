"""What the console's pages show, read from the registry's tables and the deploy backend.

One row per agent: its Knative-style conditions and phase, its versions and traffic, and, when
the backend runs the instances itself (one machine), the instances now, restarts, the last error
and whether it is scaled to zero. A Knative install shows what Knative reported (the `Active`
condition with reason `NoTraffic` is its scale-to-zero).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.backends.base import DeployBackend
from registry.console.samples import Sampler
from registry.console.sessions import Viewer
from registry.models import Agent, ApiKey, Deployment, Trigger, Version


@dataclass
class RevisionRow:
    version: str
    instances: int
    states: str  # "1 ready, 1 starting"
    restarts: int
    last_error: str | None
    confinement: str


@dataclass
class AgentRow:
    namespace: str
    name: str
    phase: str
    message: str | None
    url: str | None
    conditions: list[dict[str, Any]]
    versions: list[str]
    traffic: list[dict[str, Any]]
    generation: int | None
    revisions: list[RevisionRow] = field(default_factory=list)
    observed: bool = False  # instances known (the backend runs them)

    @property
    def instances(self) -> int:
        return sum(r.instances for r in self.revisions)

    @property
    def restarts(self) -> int:
        return sum(r.restarts for r in self.revisions)

    @property
    def last_error(self) -> str | None:
        errors = [r.last_error for r in self.revisions if r.last_error]
        return errors[-1] if errors else None

    @property
    def scaled_to_zero(self) -> bool | None:
        """True when no instance runs: observed, or Knative's Active=False/NoTraffic."""
        if self.observed:
            return self.phase != "absent" and self.instances == 0
        for condition in self.conditions:
            if condition.get("type") == "Active":
                return condition.get("status") == "False" and condition.get("reason") == "NoTraffic"
        return None


def _revisions(backend: DeployBackend, namespace: str, name: str) -> tuple[bool, list[RevisionRow]]:
    status = backend.instances(namespace, name)
    if status is None:
        return False, []
    rows = []
    for rev in status.revisions:
        counts: dict[str, int] = {}
        for inst in rev.instances:
            counts[inst.state] = counts.get(inst.state, 0) + 1
        if rev.starting:
            counts["spawning"] = rev.starting
        states = ", ".join(f"{n} {s}" for s, n in counts.items())
        rows.append(RevisionRow(
            rev.version, len(rev.instances), states, rev.restarts, rev.last_error, rev.confinement
        ))
    return True, rows


async def agent_rows(
    session: AsyncSession, backend: DeployBackend, viewer: Viewer, where: tuple[str, str] | None = None
) -> list[AgentRow]:
    """The agents this viewer's key may see (admin: all), ordered by namespace and name."""
    query = select(Agent, Deployment).outerjoin(Deployment, Deployment.agent_id == Agent.id)
    if where is not None:
        query = query.where(Agent.namespace == where[0], Agent.name == where[1])
    pairs = [
        (a, d) for a, d in (await session.execute(query.order_by(Agent.namespace, Agent.name))).tuples()
        if viewer.sees(a.namespace, a.name)
    ]
    versions: dict[int, list[str]] = {}
    ids = [a.id for a, _ in pairs]
    if ids:
        rows = await session.execute(
            select(Version.agent_id, Version.version).where(Version.agent_id.in_(ids)).order_by(Version.id)
        )
        for agent_id, version in rows.tuples():
            versions.setdefault(agent_id, []).append(version)
    out = []
    for agent, deployment in pairs:
        observed, revisions = _revisions(backend, agent.namespace, agent.name)
        out.append(AgentRow(
            namespace=agent.namespace,
            name=agent.name,
            phase=deployment.phase if deployment else "absent",
            message=deployment.last_error if deployment else None,
            url=deployment.url if deployment else None,
            conditions=list(deployment.conditions) if deployment else [],
            versions=versions.get(agent.id, []),
            traffic=list(deployment.traffic) if deployment else [],
            generation=deployment.generation if deployment else None,
            revisions=revisions,
            observed=observed,
        ))
    return out


@dataclass
class TriggerRow:
    namespace: str
    name: str
    broker: str
    filters: str
    subscriber: str
    counts: dict[str, float] | None  # None: the broker's metrics are not available


def _describe_filters(row: Trigger) -> str:
    parts = [f"{k}={v}" for k, v in sorted(row.filters.items())]
    parts += [_dialect(f) for f in row.dialect_filters]
    return ", ".join(parts) or "(every event)"


def _dialect(spec: dict[str, Any]) -> str:
    [(kind, value)] = spec.items() if len(spec) == 1 else [("filter", spec)]
    if isinstance(value, dict):
        return f"{kind}(" + ", ".join(f"{k}={v}" for k, v in value.items()) + ")"
    if isinstance(value, list):
        return f"{kind}[" + "; ".join(_dialect(v) for v in value) + "]"
    return f"{kind}({value})"


async def trigger_rows(session: AsyncSession, sampler: Sampler, viewer: Viewer) -> list[TriggerRow]:
    rows = await session.scalars(select(Trigger).order_by(Trigger.namespace, Trigger.name))
    return [
        TriggerRow(
            namespace=t.namespace,
            name=t.name,
            broker=t.broker,
            filters=_describe_filters(t),
            subscriber=f"agent {t.subscriber_agent}" if t.subscriber_agent else (t.subscriber_uri or ""),
            counts=sampler.trigger_counts(t.namespace, t.name) if sampler.enabled else None,
        )
        for t in rows
        if viewer.admin or (t.subscriber_agent and viewer.sees(t.namespace, t.subscriber_agent))
    ]


async def key_rows(session: AsyncSession) -> list[ApiKey]:
    return list(await session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc(), ApiKey.id)))
