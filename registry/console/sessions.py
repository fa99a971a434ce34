"""Console sign-in: an API key exchanged for a session, and the CSRF token that guards changes.

The session id travels in an HttpOnly, `SameSite=Strict` cookie scoped to `/console`; the key
itself stays in the registry's memory (the console calls the gateway with it, as the person
would) and never reaches the browser again. Every request re-reads the key's record, so a
revoked or expired key ends its sessions at once. A change (POST/PUT/DELETE) must also carry the
session's CSRF token in `X-CSRF-Token`, which only the console's own script can read from the page:
a form on another site can neither send that header nor, with SameSite=Strict, the cookie.

Sessions live in one registry process: with several replicas behind a load balancer, a sticky
session (or signing in again) is needed.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.apikeys import parse_key_id, verify_key
from gateway.hosts import Target
from gateway.policy import Grants
from registry.models import ApiKey
from runtime.compare import same_secret

COOKIE = "par_console"
IDLE_SECONDS = 8 * 3600
MAX_SESSIONS = 10_000


@dataclass
class Viewer:
    """Who is looking: the key's id, whether it is an admin key, what its grants allow."""

    key_id: str
    key: str  # the secret, to call agents through the gateway as this key
    admin: bool
    grants: Grants
    csrf: str
    last_seen: float

    def sees(self, namespace: str, agent: str) -> bool:
        return self.admin or self.grants.allows(Target(namespace, agent))


class SignInRefused(Exception):
    """The key given at sign-in is unknown, revoked or expired (the message says which)."""


def _usable(record: ApiKey | None, key: str | None = None) -> str | None:
    """Why this key cannot sign in, or None when it can."""
    if record is None or (key is not None and not verify_key(key, record.hash)):
        return "unknown API key"
    if record.revoked:
        return "this API key was revoked"
    if record.expires_at is not None and record.expires_at <= datetime.now(UTC):
        return "this API key has expired"
    if record.role == "gateway":
        return "a gateway key reads the snapshot feed only: it cannot sign in"
    return None


class Sessions:
    def __init__(self) -> None:
        self._by_id: dict[str, Viewer] = {}

    async def sign_in(self, session: AsyncSession, key: str) -> tuple[str, Viewer]:
        key = key.strip()
        key_id = parse_key_id(key)
        record = await session.get(ApiKey, key_id) if key_id else None
        refused = _usable(record, key)
        if refused or record is None:
            raise SignInRefused(refused or "unknown API key")
        if len(self._by_id) >= MAX_SESSIONS:
            self._expire()
        session_id = secrets.token_urlsafe(32)
        viewer = Viewer(
            record.id, key, record.admin, Grants(record.grants), secrets.token_urlsafe(32), time.monotonic()
        )
        self._by_id[session_id] = viewer
        return session_id, viewer

    async def viewer(self, session: AsyncSession, session_id: str | None) -> Viewer | None:
        """The signed-in viewer, its key checked again (revoked: signed out)."""
        viewer = self._by_id.get(session_id or "")
        if viewer is None or viewer.last_seen + IDLE_SECONDS < time.monotonic():
            self._by_id.pop(session_id or "", None)
            return None
        record = await session.get(ApiKey, viewer.key_id)
        if _usable(record) is not None:
            self.drop(session_id)
            return None
        assert record is not None
        viewer.admin, viewer.grants = record.admin, Grants(record.grants)  # grants may have changed
        viewer.last_seen = time.monotonic()
        return viewer

    def drop(self, session_id: str | None) -> None:
        self._by_id.pop(session_id or "", None)

    def _expire(self) -> None:
        cutoff = time.monotonic() - IDLE_SECONDS
        for sid in [s for s, v in self._by_id.items() if v.last_seen < cutoff]:
            del self._by_id[sid]
        if len(self._by_id) >= MAX_SESSIONS:  # still full: the oldest go
            for sid in sorted(self._by_id, key=lambda s: self._by_id[s].last_seen)[: MAX_SESSIONS // 10]:
                del self._by_id[sid]


def csrf_ok(viewer: Viewer, presented: str | None) -> bool:
    return bool(presented) and same_secret(presented, viewer.csrf)
