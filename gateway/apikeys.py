"""API key format and hashing: the one contract between the registry (which issues keys) and
the gateway (which verifies them on every request).

A key is `par_<key_id>_<secret>`: `key_id` is 12 lowercase hex characters and names the stored
record; `secret` is 43 URL-safe characters (256 random bits). Only `hash_key(key)` is stored.
Because the secret carries 256 bits of entropy a single SHA-256 is enough (no password
stretching needed) and keeps verification in the microsecond range on the hot path.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from runtime.compare import same_secret

PREFIX = "par_"
_KEY_RE = re.compile(r"^par_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


def generate_key() -> tuple[str, str]:
    """Return `(key_id, key)` for a new key; show `key` to the user once, store `hash_key(key)`."""
    key_id = secrets.token_hex(6)
    return key_id, f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def parse_key_id(key: str) -> str | None:
    """The record id inside a well-formed key, or None for anything that is not one."""
    match = _KEY_RE.match(key)
    return match.group(1) if match else None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def verify_key(key: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented key against its stored hash."""
    return same_secret(hash_key(key), stored_hash)
