"""Queries that several routers and the reconciler share."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.models import Agent, Namespace
from registry.problems import Problem


async def load_agent(session: AsyncSession, namespace: str, name: str, for_update: bool = False) -> Agent:
    """The agent, or a 404 problem naming it."""
    query = select(Agent).where(Agent.namespace == namespace, Agent.name == name)
    if for_update:
        query = query.with_for_update()
    agent = await session.scalar(query)
    if agent is None:
        raise Problem(404, "Agent not found", f"no agent {namespace}/{name}", code="agent_not_found")
    return agent


async def ensure_namespace(session: AsyncSession, namespace: str) -> None:
    """Namespaces exist once something is created in them, as `kn` users expect."""
    if await session.get(Namespace, namespace) is None:
        session.add(Namespace(name=namespace))
        await session.flush()
