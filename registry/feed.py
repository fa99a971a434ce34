"""The gateway's key/policy feed: a revision counter and the snapshot it versions.

Every change the gateway cares about (keys, agents' public flag and rate limits, agents created or
deleted, the traffic tags a deployment routes) calls `bump` inside the same transaction, so a
snapshot's revision changes exactly when its content may have. The revision is
`<database epoch>-<counter>`: a recreated database never reuses a revision a gateway has cached.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import Integer, String, cast, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from registry.knative.naming import target_tag
from registry.models import Agent, ApiKey, Deployment, Meta
from registry.schemas import Snapshot, SnapshotAgent, SnapshotKey


async def ensure_meta(session: AsyncSession) -> None:
    existing = {m.key for m in (await session.scalars(select(Meta))).all()}
    if "epoch" not in existing:
        session.add(Meta(key="epoch", value=secrets.token_hex(4)))
    if "revision" not in existing:
        session.add(Meta(key="revision", value="1"))


async def bump(session: AsyncSession) -> None:
    """Increment atomically (a row lock on PostgreSQL), so concurrent changes never share a revision."""
    await session.execute(
        update(Meta).where(Meta.key == "revision").values(value=cast(cast(Meta.value, Integer) + 1, String))
    )


async def revision(session: AsyncSession) -> str:
    rows = {key: value for key, value in await session.execute(select(Meta.key, Meta.value))}
    return f"{rows['epoch']}-{rows['revision']}"


async def snapshot(session: AsyncSession) -> Snapshot:
    # The revision is read first: the data read after it is at least that new.
    rev = await revision(session)
    # Gateway keys read this feed; they call no agent, so the gateway never learns them.
    keys = (await session.scalars(select(ApiKey).where(ApiKey.role != "gateway").order_by(ApiKey.id))).all()
    agents = (await session.scalars(select(Agent).order_by(Agent.namespace, Agent.name))).all()
    rows = await session.execute(select(Deployment.agent_id, Deployment.traffic))
    traffic: dict[int, list[dict[str, Any]]] = {agent_id: targets for agent_id, targets in rows}
    return Snapshot(
        revision=rev,
        keys=[SnapshotKey.model_validate(k, from_attributes=True) for k in keys],
        agents=[
            SnapshotAgent.model_validate(a, from_attributes=True).model_copy(
                update={"tags": [target_tag(t) for t in traffic.get(a.id) or []]}
            )
            for a in agents
        ],
    )
