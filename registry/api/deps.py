"""Request dependencies of the routers: the registry's state, a database session, the admin check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncSession

from registry.auth import Caller, authenticate_admin
from registry.state import RegistryState


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
