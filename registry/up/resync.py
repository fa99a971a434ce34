"""Bring a fresh backend up to the registry's stored state when `par up` starts again.

The local backend keeps nothing across restarts (processes die with the platform, the embedded
broker keeps its data in memory), so every stored deployment and trigger is applied again;
prepared packages are reused from the data folder, so this costs no preparation.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from registry.api.deps import RegistryState
from registry.api.triggers import trigger_spec
from registry.models import Agent, Deployment, Trigger

log = logging.getLogger("par.up")


async def resync(state: RegistryState) -> tuple[int, int]:
    """Apply stored deployments and triggers; return how many of each."""
    async with state.db.sessions() as session:
        deployed = select(Agent, Deployment).join(Deployment, Deployment.agent_id == Agent.id)
        rows = (await session.execute(deployed)).all()
        for agent, deployment in rows:
            await state.deployer.apply(session, agent, deployment)
        triggers = list(await session.scalars(select(Trigger)))
        for trigger in triggers:
            await state.backend.apply_trigger(trigger_spec(trigger))
        await session.commit()
        followed = [(a.namespace, a.name, d.generation) for a, d in rows]
    for namespace, name, generation in followed:
        state.deployer.follow(namespace, name, generation)
    log.info("resynced", extra={"deployments": len(rows), "triggers": len(triggers)})
    return len(rows), len(triggers)
