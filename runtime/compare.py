"""Constant-time comparison of secrets as bytes, whatever text a client sent.

`hmac.compare_digest` raises TypeError on a `str` holding anything but ASCII, so a header with a
non-ASCII byte (Starlette decodes headers as latin-1) must never reach it as text: that would be a
500 where a 401 belongs. Every secret comparison of the platform goes through here.
"""

from __future__ import annotations

import hmac


def _bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")


def same_secret(presented: str | bytes | None, expected: str | bytes) -> bool:
    """True when `presented` is exactly `expected` (constant time in the length of `expected`)."""
    if presented is None:
        return False
    return hmac.compare_digest(_bytes(presented), _bytes(expected))


def bearer_matches(authorization: str | None, token: str) -> bool:
    """`Authorization: Bearer <token>` exactly, and a configured, non-empty token."""
    return bool(token) and same_secret(authorization or "", f"Bearer {token}")


def only_value(values: list[str]) -> str | None:
    """The one value of a header sent once; None when absent or repeated (two Authorization
    headers are ambiguous: neither is taken, as the gateway does)."""
    return values[0] if len(values) == 1 else None
