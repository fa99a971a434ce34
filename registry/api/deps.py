"""Shared request dependencies: the registry's state, a database session, the admin check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Header, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.artifacts import ArtifactStore
from registry.auth import Caller, KeyCache, authenticate_admin
from registry.backends.base import DeployBackend
from registry.db import Database
from registry.models import Agent
from registry.problems import Problem
from registry.readcache import ReadCache
from registry.settings import RegistrySettings

if TYPE_CHECKING:
    from registry.deployer import Deployer


@dataclass
class RegistryState:
    settings: RegistrySettings
    db: Database
    store: ArtifactStore
    backend: DeployBackend
    artifact_base: str  # e.g. http://127.0.0.1:8097 ; artifact URLs are {base}/v1/artifacts/{sha}
    keys: KeyCache = field(default_factory=KeyCache)
    reads: ReadCache = field(default_factory=lambda: ReadCache(ttl=1.0))
    deployer: Deployer = field(init=False)

    def artifact_url(self, sha256: str) -> str:
        return f"{self.artifact_base}/v1/artifacts/{sha256}"


async def get_state(request: Request) -> RegistryState:
    return request.app.state.registry


async def get_session(state: Annotated[RegistryState, Depends(get_state)]) -> AsyncIterator[AsyncSession]:
    async with state.db.sessions() as session:
        yield session


async def require_admin(
    state: Annotated[RegistryState, Depends(get_state)],
    authorization: Annotated[str | None, Header()] = None,
) -> Caller:
    return await authenticate_admin(state.db.sessions, authorization, state.keys)


State = Annotated[RegistryState, Depends(get_state)]
Session = Annotated[AsyncSession, Depends(get_session)]
Admin = Annotated[Caller, Depends(require_admin)]


async def load_agent(session: AsyncSession, namespace: str, name: str, for_update: bool = False) -> Agent:
    query = select(Agent).where(Agent.namespace == namespace, Agent.name == name)
    if for_update:
        query = query.with_for_update()
    agent = await session.scalar(query)
    if agent is None:
        raise Problem(404, "Agent not found", f"no agent {namespace}/{name}")
    return agent
