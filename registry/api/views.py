"""Database rows -> API bodies, and keyset pagination shared by every list."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any, Protocol

from fastapi import Path as PathParam
from fastapi import Query, Response
from pydantic import BaseModel
from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from registry.knative.naming import tag_url, target_revision, target_tag
from registry.models import Agent, Deployment, Version
from registry.problems import Problem
from registry.schemas import AgentOut, DeploymentOut, ResourcesOut, StatusOut, TrafficTargetOut, VersionOut

DNS_LABEL = r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"
NamespacePath = PathParam(pattern=DNS_LABEL, description="namespace (a DNS label)")
LimitQuery = Query(50, ge=1, le=200, description="page size")
CursorQuery = Query(None, description="next_cursor of the previous page")


def json_response(body: BaseModel, status_code: int = 200) -> Response:
    """Serialise once: hot reads skip FastAPI's re-validation of an already-typed body
    (the route's `response_model` still documents it)."""
    return Response(body.model_dump_json(), status_code=status_code, media_type="application/json")


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, arity: int) -> list[Any] | None:
    if cursor is None:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        values = None
    if not isinstance(values, list) or len(values) != arity:
        raise Problem(
            422, "Invalid cursor", "pass back next_cursor exactly as returned", code="invalid_cursor"
        )
    return values


async def keyset_page(
    session: AsyncSession,
    query: Select[Any],
    columns: Sequence[InstrumentedAttribute[Any]],
    cursor: str | None,
    limit: int,
) -> tuple[list[Any], str | None]:
    """One page of `query` in the order of `columns` (unique together), after `cursor`; and the
    cursor of the next page, None on the last one. Keyset paging: every page costs the same."""
    after = decode_cursor(cursor, len(columns))
    query = query.order_by(*columns).limit(limit + 1)
    if after is not None:
        query = query.where(columns[0] > after[0] if len(columns) == 1 else tuple_(*columns) > tuple_(*after))
    rows = list(await session.scalars(query))
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor([getattr(rows[-1], column.key) for column in columns])


class StatusFields(Protocol):
    """A deployment's status columns: an ORM `Deployment` or a plain row of the hot GET's query."""

    phase: str
    url: str | None
    conditions: Any
    last_error: str | None
    traffic: Any


class AgentFields(Protocol):
    namespace: str
    name: str
    public: bool
    rate: float | None
    burst: int | None
    created_at: Any


def status_out(deployment: StatusFields | None) -> StatusOut:
    if deployment is None:
        return StatusOut(phase="absent")
    return StatusOut(
        phase=deployment.phase,
        url=deployment.url,
        conditions=deployment.conditions,
        message=deployment.last_error,
    )


def agent_out(agent: AgentFields, latest: str | None, deployment: StatusFields | None) -> AgentOut:
    return AgentOut(
        namespace=agent.namespace,
        name=agent.name,
        public=agent.public,
        rate=agent.rate,
        burst=agent.burst,
        created_at=agent.created_at,
        latest_version=latest,
        serving=[
            {"version": t["version"], "percent": t["percent"]}
            for t in (deployment.traffic if deployment is not None else None) or []
            if t.get("percent")
        ],
        status=status_out(deployment),
    )


async def agents_out(session: AsyncSession, agents: list[Agent]) -> list[AgentOut]:
    """Bodies for a page of agents in three queries, whatever the page size."""
    ids = [a.id for a in agents]
    if not ids:
        return []
    deployments = {
        d.agent_id: d for d in await session.scalars(select(Deployment).where(Deployment.agent_id.in_(ids)))
    }
    newest = select(func.max(Version.id)).where(Version.agent_id.in_(ids)).group_by(Version.agent_id)
    rows = await session.execute(select(Version.agent_id, Version.version).where(Version.id.in_(newest)))
    latest = {agent_id: version for agent_id, version in rows}
    return [agent_out(a, latest.get(a.id), deployments.get(a.id)) for a in agents]


def version_out(agent: Agent, version: Version, artifact_url: str) -> VersionOut:
    return VersionOut(
        namespace=agent.namespace,
        agent=agent.name,
        version=version.version,
        sha256=version.sha256,
        size=version.size,
        created_at=version.created_at,
        manifest=version.manifest,
        artifact_url=artifact_url,
    )


def deployment_out(agent: Agent, deployment: Deployment) -> DeploymentOut:
    return DeploymentOut(
        namespace=agent.namespace,
        agent=agent.name,
        generation=deployment.generation,
        traffic=[
            TrafficTargetOut(
                **{**t, "tag": target_tag(t)},
                revision=target_revision(deployment.revisions, agent.name, t["version"]),
                url=tag_url(deployment.url, agent.name, target_tag(t)),
            )
            for t in deployment.traffic
        ],
        min_scale=deployment.min_scale,
        max_scale=deployment.max_scale,
        target=deployment.target,
        container_concurrency=deployment.container_concurrency,
        timeout_seconds=deployment.timeout_seconds,
        env=deployment.env,
        resources=ResourcesOut(**(deployment.resources or {})),
        broker=deployment.broker,
        cluster_local=deployment.cluster_local,
        status=status_out(deployment),
        updated_at=deployment.updated_at,
    )
