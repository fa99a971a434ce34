"""One access decision: target, credentials, grants, rate limit — shared by ext_authz and proxy.

The order is fixed and each step answers with its own status: no target 404, no fresh policy 503,
no or bad credentials 401 (with `WWW-Authenticate`), not granted 403, over the limit 429.
Nothing here does I/O except the Redis limiter's single round trip.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.apikeys import PREFIX, parse_key_id, verify_key
from gateway.feed import PolicySource
from gateway.hosts import HostResolver, Target
from gateway.jwtauth import JwtError, JwtVerifier, looks_like_jwt
from gateway.policy import Grants, KeyRecord, Policy, effective_limit
from gateway.ratelimit import LimiterUnavailable, RateLimiter
from gateway.settings import GatewaySettings
from runtime.problem import problem_bytes

log = logging.getLogger(__name__)

ANONYMOUS = "-"
_CHALLENGE = b'Bearer realm="par"'
_NO_GRANTS = Grants(())


@dataclass(slots=True)
class Decision:
    status: int
    reason: str  # bounded slug for metrics and logs
    message: str = ""
    target: Target | None = None
    tenant: str = ANONYMOUS
    key_id: str = ANONYMOUS
    headers: Sequence[tuple[bytes, bytes]] = ()

    @property
    def allowed(self) -> bool:
        return self.status == 200

    def body(self) -> bytes:
        """The RFC 9457 problem (`runtime.problem`): `code` is the reason slug."""
        return problem_bytes(self.status, self.reason, self.message or None)


def deny(status: int, reason: str, message: str, target: Target | None = None) -> Decision:
    return Decision(status, reason, message, target)


def body_too_large(max_bytes: int) -> Decision:
    """The 413 every way in answers for a request body over its cap (declared or streamed)."""
    return deny(413, "body_too_large", f"request body over {max_bytes} bytes")


def _unauthorized(reason: str, message: str, target: Target) -> Decision:
    if reason == "missing_credentials":
        challenge = _CHALLENGE
    else:
        description = message.replace("\\", "").replace('"', "'")  # a valid quoted-string
        challenge = b'%s, error="invalid_token", error_description="%s"' % (_CHALLENGE, description.encode())
    return Decision(401, reason, message, target, headers=[(b"www-authenticate", challenge)])


class Authorizer:
    def __init__(
        self,
        settings: GatewaySettings,
        policy: PolicySource,
        limiter: RateLimiter,
        jwt_verifier: JwtVerifier | None = None,
    ) -> None:
        self.hosts = HostResolver(settings.domain)
        self.policy = policy
        self.limiter = limiter
        self.jwt = jwt_verifier or JwtVerifier(settings)
        self.max_body = settings.max_body_bytes
        self.default_rate = settings.default_rate
        self.default_burst = settings.default_burst
        self.limiter_fail_open = settings.ratelimit_fail_open
        self._limiter_warned_at = 0.0
        self._verified: dict[str, KeyRecord] = {}
        self._verified_policy: Policy | None = None

    async def decide(self, host: str, authorization: str | None, content_length: str | None) -> Decision:
        if content_length is not None and (
            not content_length.isdigit() or int(content_length) > self.max_body
        ):
            return body_too_large(self.max_body)
        target = self.hosts.resolve(host)
        if target is None:
            return deny(404, "unknown_host", "no agent is served at this host")
        policy = self.policy.current()
        if policy is None:
            return deny(503, "policy_unavailable", "access policy not loaded", target)
        target = policy.target(target)
        agent = policy.agents.get(target if target.tag is None else Target(target.namespace, target.agent))
        public = agent is not None and agent.public

        if authorization is None:
            if not public:
                return _unauthorized("missing_credentials", "credentials required", target)
            kind, principal, tenant, admin = "public", ANONYMOUS, ANONYMOUS, False
            grants, rate, burst = _NO_GRANTS, None, None
        else:
            scheme, _, token = authorization.partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                return _unauthorized("malformed_credentials", "expected a Bearer token", target)
            if token.startswith(PREFIX):
                record = self._verified_key(policy, token)
                if isinstance(record, str):
                    return _unauthorized(record, "invalid API key", target)
                if record.revoked:
                    return _unauthorized("revoked_key", "API key revoked", target)
                if record.expires_at is not None and time.time() >= record.expires_at:
                    return _unauthorized("expired_key", "API key expired", target)
                kind, principal, tenant, admin = "key", record.id, record.tenant, record.admin
                grants, rate, burst = record.grants, record.rate, record.burst
            elif looks_like_jwt(token):
                try:
                    claims = await self.jwt.verify(token)
                except JwtError as exc:
                    return _unauthorized(exc.reason, str(exc), target)
                kind, principal, tenant, admin = "jwt", f"jwt:{claims.subject}", claims.tenant, False
                grants, rate, burst = claims.grants, None, None
            else:
                return _unauthorized("malformed_credentials", "unrecognised bearer token", target)
            if admin:
                kind = "admin"
            elif not (public or grants.allows(target)):
                return deny(403, "forbidden", f"not allowed to call {target}", target)

        decision = Decision(200, kind, "", target, tenant, principal)
        limit = effective_limit(agent, rate, burst, self.default_rate, self.default_burst)
        if limit is None:
            return decision
        try:
            result = await self.limiter.hit(f"{principal}|{target}", limit)
        except LimiterUnavailable as exc:
            return self._limiter_down(exc, decision)
        decision.headers = result.headers()
        if not result.allowed:
            decision.status, decision.reason = 429, "rate_limited"
            decision.message = f"rate limit of {limit.rate:g}/s (burst {limit.burst}) exceeded"
        return decision

    def _verified_key(self, policy: Policy, token: str) -> KeyRecord | str:
        """The record whose hash `token` matches, or the reason it matches none.

        Keys that verified against this policy are remembered by their full text (only keys that
        matched a stored hash, so the cache is bounded by the key count), which saves the hash on
        every later request; a new policy (a revocation, say) starts a new cache."""
        if policy is not self._verified_policy:
            self._verified, self._verified_policy = {}, policy
        record = self._verified.get(token)
        if record is not None:
            return record
        key_id = parse_key_id(token)
        if key_id is None:
            return "malformed_credentials"
        record = policy.keys.get(key_id)
        if record is None:
            return "unknown_key"
        if not verify_key(token, record.hash):
            return "bad_key"
        self._verified[token] = record
        return record

    def _limiter_down(self, exc: LimiterUnavailable, decision: Decision) -> Decision:
        now = time.monotonic()
        if now - self._limiter_warned_at > 5.0:
            self._limiter_warned_at = now
            action = "allowing (fail open)" if self.limiter_fail_open else "denying (fail closed)"
            log.error(f"rate limiter unavailable; {action}", extra={"error": str(exc)})
        if self.limiter_fail_open:
            return decision
        decision.status, decision.reason = 503, "ratelimit_unavailable"
        decision.message = "rate limiter unavailable"
        decision.headers = [(b"retry-after", b"1")]
        return decision
