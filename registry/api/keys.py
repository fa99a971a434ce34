"""API keys: create (the secret is returned once), list, get, revoke. Only hashes are stored."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from gateway.apikeys import generate_key, hash_key
from registry import feed
from registry.api.deps import Admin, Session, State
from registry.api.views import CursorQuery, LimitQuery, keyset_page
from registry.models import ApiKey
from registry.problems import Problem
from registry.schemas import KeyCreate, KeyCreated, KeyOut, Page

router = APIRouter(tags=["keys"])


@router.post("/v1/keys", status_code=201, response_model=KeyCreated)
async def create_key(body: KeyCreate, session: Session, _: Admin) -> KeyCreated:
    """A new key for `tenant`; grants default to `{tenant}/*` (every agent of that namespace)."""
    key_id, key = generate_key()
    grants = body.grants if body.grants is not None else [f"{body.tenant}/*"]
    if body.role == "gateway":
        grants = []  # it calls no agent (and the snapshot leaves it out: the gateway refuses it)
    row = ApiKey(
        id=key_id, hash=hash_key(key), revoked=False, **body.model_dump(exclude={"grants"}), grants=grants
    )
    session.add(row)
    await feed.bump(session)
    await session.commit()
    return KeyCreated(**KeyOut.model_validate(row, from_attributes=True).model_dump(), key=key)


@router.get("/v1/keys", response_model=Page[KeyOut])
async def list_keys(
    session: Session,
    _: Admin,
    tenant: str | None = None,
    limit: int = LimitQuery,
    cursor: str | None = CursorQuery,
) -> Page[KeyOut]:
    query = select(ApiKey)
    if tenant is not None:
        query = query.where(ApiKey.tenant == tenant)
    rows, next_cursor = await keyset_page(session, query, [ApiKey.id], cursor, limit)
    return Page(items=[KeyOut.model_validate(r, from_attributes=True) for r in rows], next_cursor=next_cursor)


async def _load(session: Session, key_id: str) -> ApiKey:
    row = await session.get(ApiKey, key_id)
    if row is None:
        raise Problem(404, "Key not found", f"no API key {key_id}", code="key_not_found")
    return row


@router.get("/v1/keys/{key_id}", response_model=KeyOut)
async def get_key(key_id: str, session: Session, _: Admin) -> KeyOut:
    return KeyOut.model_validate(await _load(session, key_id), from_attributes=True)


@router.delete("/v1/keys/{key_id}", response_model=KeyOut)
async def revoke_key(key_id: str, state: State, session: Session, caller: Admin) -> KeyOut:
    """Revoke (the record stays, marked revoked, so gateways learn of it from the feed)."""
    row = await _load(session, key_id)
    if row.id == caller.id:
        raise Problem(
            409, "Cannot revoke own key", "revoke the key you are calling with from another admin key",
            code="own_key",
        )
    row.revoked = True
    await feed.bump(session)
    await session.commit()
    state.keys.clear()
    return KeyOut.model_validate(row, from_attributes=True)
