"""Admin-key authentication of the registry API and the admin key's bootstrap.

On first start with no admin key in the database the registry creates one, writes it to
`<data-dir>/admin.key` (mode 0600) and returns it so that `serve` prints it once. `PAR_ADMIN_KEY`
(a well-formed `par_` key) is installed as the admin key instead, and nothing is written.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.apikeys import generate_key, hash_key, parse_key_id, verify_key
from registry import feed
from registry.models import ApiKey
from registry.problems import Problem


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"}, code="unauthorized")


@dataclass(frozen=True)
class Caller:
    """The authenticated key behind a request."""

    id: str
    admin: bool
    revoked: bool
    expires_at: datetime | None
    role: str = "agents"


class KeyCache:
    """Verified keys for a few seconds, so a read costs no key lookup. Changes made through this
    registry clear it at once; another replica's revocation is seen within `ttl` seconds (the
    gateway's own refresh interval is of the same order)."""

    def __init__(self, ttl: float = 2.0) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Caller]] = {}

    def get(self, key_hash: str) -> Caller | None:
        entry = self._entries.get(key_hash)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key_hash: str, caller: Caller) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[key_hash] = (time.monotonic() + self.ttl, caller)

    def clear(self) -> None:
        self._entries.clear()


async def authenticate(
    sessions: async_sessionmaker[AsyncSession], authorization: str | None, cache: KeyCache
) -> Caller:
    """The live key presented as `Authorization: Bearer <key>`; 401 otherwise."""
    scheme, _, key = (authorization or "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise _unauthorized("send an admin API key as 'Authorization: Bearer par_...'")
    presented = hash_key(key)
    caller = cache.get(presented)
    if caller is None:
        key_id = parse_key_id(key)
        record = None
        if key_id:
            async with sessions() as session:  # only on a cache miss: most requests need no lookup
                record = await session.get(ApiKey, key_id)
        if record is None or not verify_key(key, record.hash):
            raise _unauthorized("unknown API key")
        caller = Caller(record.id, record.admin, record.revoked, record.expires_at, record.role or "agents")
        cache.put(presented, caller)
    if caller.revoked:
        raise _unauthorized("this API key was revoked")
    if caller.expires_at is not None and caller.expires_at <= datetime.now(UTC):
        raise _unauthorized("this API key has expired")
    return caller


async def authenticate_admin(
    sessions: async_sessionmaker[AsyncSession], authorization: str | None, cache: KeyCache
) -> Caller:
    """The admin key presented as `Authorization: Bearer <key>`; 401/403 otherwise."""
    caller = await authenticate(sessions, authorization, cache)
    if caller.role == "gateway":
        raise Problem(
            403, "Forbidden", "a gateway key can only read /v1/gateway/snapshot", code="admin_required"
        )
    if not caller.admin:
        raise Problem(403, "Forbidden", "the registry API needs an admin key", code="admin_required")
    return caller


async def authenticate_feed_reader(
    sessions: async_sessionmaker[AsyncSession], authorization: str | None, cache: KeyCache
) -> Caller:
    """A gateway key (role "gateway": this feed and nothing else) or an admin key; 401/403 otherwise."""
    caller = await authenticate(sessions, authorization, cache)
    if caller.role != "gateway" and not caller.admin:
        raise Problem(
            403, "Forbidden",
            "the snapshot feed needs a gateway key (par keys create --gateway) or an admin key",
            code="admin_required",
        )
    return caller


def _admin_record(key_id: str, key: str, name: str) -> ApiKey:
    return ApiKey(
        id=key_id, hash=hash_key(key), name=name, tenant="admin", admin=True, grants=["*/*"], revoked=False,
        role="agents",
    )


async def install_gateway_key(session: AsyncSession, key: str) -> None:
    """Install `key` (PAR_GATEWAY_KEY; `par up` makes its own) as a gateway key: it reads the
    snapshot feed and nothing else, so the internet-facing gateway holds no admin key."""
    key_id = parse_key_id(key)
    if key_id is None:
        raise ValueError("PAR_GATEWAY_KEY is not a PAR API key (par_<12 hex>_<43 chars>)")
    record = await session.get(ApiKey, key_id)
    if record is not None and record.admin and not record.revoked:
        raise ValueError("PAR_GATEWAY_KEY is an admin key: give the gateway a key of its own")
    if record is None:
        session.add(ApiKey(
            id=key_id, hash=hash_key(key), name="gateway (PAR_GATEWAY_KEY)", tenant="gateway", admin=False,
            role="gateway", grants=[], revoked=False,
        ))
    else:
        record.hash, record.admin, record.role, record.grants, record.revoked = (
            hash_key(key), False, "gateway", [], False
        )
    await feed.bump(session)


async def bootstrap_admin(session: AsyncSession, data_dir: Path, configured: str | None) -> str | None:
    """Ensure an admin key exists; return the key text only when it was generated now."""
    if configured:
        key_id = parse_key_id(configured)
        if key_id is None:
            raise ValueError("PAR_ADMIN_KEY is not a PAR API key (par_<12 hex>_<43 chars>)")
        record = await session.get(ApiKey, key_id)
        if record is None:
            session.add(_admin_record(key_id, configured, "admin (PAR_ADMIN_KEY)"))
        else:
            record.hash, record.admin, record.revoked = hash_key(configured), True, False
        await feed.bump(session)
        return None
    active_admin = select(ApiKey.id).where(ApiKey.admin.is_(True), ApiKey.revoked.is_(False))
    existing = await session.scalar(active_admin)
    if existing is not None:
        return None
    key_id, key = generate_key()
    session.add(_admin_record(key_id, key, "admin (bootstrap)"))
    await feed.bump(session)
    os.makedirs(data_dir, exist_ok=True)
    path = data_dir / "admin.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    os.chmod(path, 0o600)
    return key
