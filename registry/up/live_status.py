"""Keep the registry's stored deployment status current after the deploy watch has ended.

The registry follows a deploy until it is `ready`; on one machine much happens after that
(instances start, idle out, crash and are replaced), and `par agents get` should show it. This
task copies the local backend's status into the registry's deployment rows whenever it changes
(not on every request: the status summarises instances, restarts and errors, not traffic).
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select

from registry.api.deps import RegistryState
from registry.backends.base import DeploymentStatus
from registry.backends.local import Supervisor
from registry.deployer import record
from registry.models import Agent, Deployment

log = logging.getLogger("par.up")
COALESCE_SECONDS = 0.2


async def keep_status_live(state: RegistryState, supervisor: Supervisor) -> None:
    written: dict[tuple[str, str], DeploymentStatus] = {}
    seen = -1
    while True:
        await supervisor.wait_changed(seen)
        await asyncio.sleep(COALESCE_SECONDS)  # one write for a burst of changes
        seen = supervisor.generation
        for observed in supervisor.statuses():
            key = (observed["namespace"], observed["name"])
            status = await state.backend.status(*key)
            if written.get(key) == status:
                continue
            try:
                await _store(state, key, status)
            except Exception:  # a database hiccup must not end status updates for good
                log.exception("storing live status failed", extra={"agent": "/".join(key)})
                continue
            written[key] = status


async def _store(state: RegistryState, key: tuple[str, str], status: DeploymentStatus) -> None:
    async with state.db.sessions() as session:
        agent = await session.scalar(select(Agent).where(Agent.namespace == key[0], Agent.name == key[1]))
        deployment = await session.get(Deployment, agent.id) if agent else None
        if deployment is None or deployment.generation != status.generation:
            return  # a newer deploy is in flight; the registry's own watch records that one
        record(deployment, status)
        await session.commit()
