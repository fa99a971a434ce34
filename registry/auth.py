"""Admin-key authentication of the registry API and the admin key's bootstrap.

On first start with no admin key in the database the registry creates one, writes it to
`<data-dir>/admin.key` (mode 0600) and returns it so that `serve` prints it once. `PAR_ADMIN_KEY`
(a well-formed `par_` key) is installed as the admin key instead, and nothing is written.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.apikeys import generate_key, hash_key, parse_key_id, verify_key
from registry import feed
from registry.models import ApiKey
from registry.problems import Problem


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


async def authenticate_admin(session: AsyncSession, authorization: str | None) -> ApiKey:
    """The admin key presented as `Authorization: Bearer <key>`; 401/403 otherwise."""
    scheme, _, key = (authorization or "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise _unauthorized("send an admin API key as 'Authorization: Bearer par_...'")
    key_id = parse_key_id(key)
    record = await session.get(ApiKey, key_id) if key_id else None
    if record is None or not verify_key(key, record.hash):
        raise _unauthorized("unknown API key")
    if record.revoked:
        raise _unauthorized("this API key was revoked")
    if record.expires_at is not None and record.expires_at <= datetime.now(UTC):
        raise _unauthorized("this API key has expired")
    if not record.admin:
        raise Problem(403, "Forbidden", "the registry API needs an admin key")
    return record


async def bootstrap_admin(session: AsyncSession, data_dir: Path, configured: str | None) -> str | None:
    """Ensure an admin key exists; return the key text only when it was generated now."""
    if configured:
        key_id = parse_key_id(configured)
        if key_id is None:
            raise ValueError("PAR_ADMIN_KEY is not a PAR API key (par_<12 hex>_<43 chars>)")
        record = await session.get(ApiKey, key_id)
        if record is None:
            session.add(
                ApiKey(
                    id=key_id,
                    hash=hash_key(configured),
                    name="admin (PAR_ADMIN_KEY)",
                    tenant="admin",
                    admin=True,
                    grants=["*/*"],
                    revoked=False,
                )
            )
        else:
            record.hash, record.admin, record.revoked = hash_key(configured), True, False
        await feed.bump(session)
        return None
    active_admin = select(ApiKey.id).where(ApiKey.admin.is_(True), ApiKey.revoked.is_(False))
    existing = await session.scalar(active_admin)
    if existing is not None:
        return None
    key_id, key = generate_key()
    session.add(
        ApiKey(
            id=key_id,
            hash=hash_key(key),
            name="admin (bootstrap)",
            tenant="admin",
            admin=True,
            grants=["*/*"],
            revoked=False,
        )
    )
    await feed.bump(session)
    os.makedirs(data_dir, exist_ok=True)
    path = data_dir / "admin.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    os.chmod(path, 0o600)
    return key
