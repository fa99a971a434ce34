"""Request dependencies of the routers: the registry's state, a database session, the admin check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncSession

from registry.auth import Caller, authenticate_admin, authenticate_feed_reader
from registry.state import RegistryState
from runtime.compare import only_value


async def get_state(request: Request) -> RegistryState:
    return request.app.state.registry


async def get_session(state: Annotated[RegistryState, Depends(get_state)]) -> AsyncIterator[AsyncSession]:
    async with state.db.sessions() as session:
        yield session


def _authorization(request: Request) -> str | None:
    """The one Authorization header (two are ambiguous: neither counts)."""
    return only_value(request.headers.getlist("authorization"))


async def require_admin(
    state: Annotated[RegistryState, Depends(get_state)],
    request: Request,
    authorization: Annotated[str | None, Header(description="Bearer par_... (an admin key)")] = None,
) -> Caller:
    return await authenticate_admin(state.db.sessions, _authorization(request), state.keys)


async def require_feed_reader(
    state: Annotated[RegistryState, Depends(get_state)],
    request: Request,
    authorization: Annotated[str | None, Header(description="Bearer par_... (gateway/admin)")] = None,
) -> Caller:
    return await authenticate_feed_reader(state.db.sessions, _authorization(request), state.keys)


State = Annotated[RegistryState, Depends(get_state)]
Session = Annotated[AsyncSession, Depends(get_session)]
Admin = Annotated[Caller, Depends(require_admin)]
FeedReader = Annotated[Caller, Depends(require_feed_reader)]
