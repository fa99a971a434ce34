"""JWT bearer tokens: signature (asymmetric algorithms only), `iss`, `aud`, `exp`, `nbf`, then the
tenant and grants from configurable claims.

Confusion attacks are closed off before PyJWT sees the token: the header's `alg` must be one of
the configured asymmetric algorithms (so `none` and `HS*` never verify), and the key's type must
match it (an RSA key only for `RS*`, an EC key only for `ES*`). Keys come from one configured
public key or from a JWKS URL fetched in the background (and again, at most every
`_MIN_REFETCH` seconds, when a token names an unknown `kid` — keys get rotated).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from gateway.policy import Grants
from gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

_MIN_REFETCH = 10.0
_KEY_TYPES = {"RS": RSAPublicKey, "ES": EllipticCurvePublicKey}


class JwtError(Exception):
    """A token that must not pass; `reason` is the metrics/log slug."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class JwtPrincipal:
    subject: str
    tenant: str
    grants: Grants


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


class JwtVerifier:
    def __init__(self, settings: GatewaySettings) -> None:
        self.algorithms = frozenset(settings.jwt_algorithms)
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.leeway = settings.jwt_leeway
        self.tenant_claim = settings.jwt_tenant_claim
        self.grants_claim = settings.jwt_grants_claim
        self.jwks_url = settings.jwt_jwks_url
        self.refresh_interval = settings.jwks_refresh_interval
        self._static_key = _load_public_key(settings.jwt_public_key) if settings.jwt_public_key else None
        self._jwks: dict[str | None, object] = {}
        self._fetched_at = -_MIN_REFETCH
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        required = ["exp"] + (["iss"] if self.issuer else []) + (["aud"] if self.audience else [])
        self._options = {"require": required, "verify_aud": self.audience is not None}

    @property
    def enabled(self) -> bool:
        return self._static_key is not None or self.jwks_url is not None

    async def start(self) -> None:
        if self.jwks_url:
            await self._fetch_logged()
            self._task = asyncio.create_task(self._loop(), name="jwks-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def verify(self, token: str) -> JwtPrincipal:
        if not self.enabled:
            raise JwtError("invalid_jwt", "JWT bearer tokens are not accepted here")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise JwtError("invalid_jwt", "malformed token") from exc
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise JwtError("invalid_jwt", f"algorithm {alg!r} is not accepted")
        key = await self._key_for(header.get("kid"))
        if not isinstance(key, _KEY_TYPES[alg[:2]]):
            raise JwtError("invalid_jwt", f"no {alg} key for this token")
        try:
            claims = jwt.decode(
                token,
                key,  # type: ignore[arg-type]
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options=self._options,  # type: ignore[arg-type]
            )
        except jwt.ExpiredSignatureError as exc:
            raise JwtError("expired_jwt", "token expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise JwtError("jwt_not_yet_valid", "token not yet valid") from exc
        except jwt.InvalidTokenError as exc:
            raise JwtError("invalid_jwt", f"invalid token: {exc}") from exc
        return self._principal(claims)

    def _principal(self, claims: dict[str, object]) -> JwtPrincipal:
        tenant = claims.get(self.tenant_claim)
        if not isinstance(tenant, str) or not tenant:
            raise JwtError("invalid_jwt", f"token has no {self.tenant_claim!r} claim")
        raw = claims.get(self.grants_claim)
        if isinstance(raw, str):
            patterns = raw.split()
        elif isinstance(raw, list) and all(isinstance(p, str) for p in raw):
            patterns = raw
        else:
            patterns = [f"{tenant}/*"]
        subject = claims.get("sub")
        return JwtPrincipal(
            subject=str(subject) if subject else tenant, tenant=tenant, grants=Grants(patterns)
        )

    async def _key_for(self, kid: object) -> object | None:
        if self._static_key is not None:
            return self._static_key
        kid = kid if isinstance(kid, str) else None
        key = self._pick(kid)
        if key is None and time.monotonic() - self._fetched_at >= _MIN_REFETCH:
            async with self._lock:
                if time.monotonic() - self._fetched_at >= _MIN_REFETCH:
                    await self._fetch_logged()
            key = self._pick(kid)
        return key

    def _pick(self, kid: str | None) -> object | None:
        if kid is not None:
            return self._jwks.get(kid)
        return next(iter(self._jwks.values())) if len(self._jwks) == 1 else None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_interval)
            await self._fetch_logged()

    async def _fetch_logged(self) -> None:
        self._fetched_at = time.monotonic()
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                response = await client.get(self.jwks_url)  # type: ignore[arg-type]
                response.raise_for_status()
                keyset = jwt.PyJWKSet.from_dict(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            log.warning("JWKS fetch failed", extra={"url": self.jwks_url, "error": repr(exc)})
            return
        self._jwks = {k.key_id: k.key for k in keyset.keys}
        log.info("JWKS loaded", extra={"url": self.jwks_url, "keys": len(self._jwks)})


def _load_public_key(value: str) -> object:
    """PEM text, or the path of a PEM file."""
    text = value if "-----BEGIN" in value else Path(value).read_text()
    key = load_pem_public_key(text.encode())
    if not isinstance(key, RSAPublicKey | EllipticCurvePublicKey):
        raise ValueError("PAR_GATEWAY_JWT_PUBLIC_KEY must be an RSA or EC public key")
    return key
