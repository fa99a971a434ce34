"""The gateway's configuration: one pydantic-settings object read from the environment.

PAR-specific variables are prefixed `PAR_GATEWAY_`; where Knative/Kourier or the runtime already
name a setting (`PORT`, `KOURIER_EXTAUTHZ_PATHPREFIX`, `PAR_REGISTRY_URL`) that name is used.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from gateway.hosts import DEFAULT_DOMAIN
from runtime.settingtypes import Bytes, Seconds

ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "ES256", "ES384", "ES512"})


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAR_GATEWAY_", extra="ignore", populate_by_name=True)

    # authz: an Envoy ext_authz service; proxy: the local ingress (the same policy, then the agent).
    mode: Literal["authz", "proxy"] = "authz"
    # Address to bind.
    host: str = "127.0.0.1"
    # Port to bind.
    port: int = Field(8080, ge=1, le=65535, validation_alias=AliasChoices("PORT", "PAR_GATEWAY_PORT"))
    # DEBUG, INFO, WARNING or ERROR.
    log_level: str = "INFO"

    # Targets: Host `{agent}.{namespace}.{domain}` as Knative routes them.
    domain: str = DEFAULT_DOMAIN
    # Kourier prepends this to the original path of every check request.
    path_prefix: str = Field(
        "", validation_alias=AliasChoices("KOURIER_EXTAUTHZ_PATHPREFIX", "PAR_GATEWAY_PATH_PREFIX")
    )

    # Policy feed: the registry snapshot (contract 4) or a static file of the same shape.
    registry_url: str | None = Field(None, validation_alias=AliasChoices("PAR_REGISTRY_URL"))
    # The registry key for the snapshot feed: a gateway key (`par keys create --gateway`), or an admin key.
    registry_key: str | None = Field(
        None, validation_alias=AliasChoices("PAR_GATEWAY_REGISTRY_KEY", "PAR_API_KEY", "PAR_ADMIN_KEY")
    )
    # A snapshot-shaped JSON file instead of the registry (standalone use).
    policy_file: str | None = None
    # How often the policy is refreshed (a revoked key stops working within it).
    refresh_interval: Seconds = Field(2.0, gt=0)
    # Serve from the last good snapshot at most this long after the feed stopped answering.
    max_staleness: Seconds = Field(60.0, gt=0)

    # JWT bearer tokens (optional): a JWKS URL or one configured public key (PEM text or file path).
    jwt_jwks_url: str | None = None
    # One public key (PEM text or a file path) instead of a JWKS URL.
    jwt_public_key: str | None = None
    # Required `iss` of JWTs, when set.
    jwt_issuer: str | None = None
    # Required `aud` of JWTs, when set.
    jwt_audience: str | None = None
    # Accepted JWT algorithms (asymmetric only), comma-separated.
    jwt_algorithms: Annotated[list[str], NoDecode] = ["RS256", "ES256"]
    # Clock skew allowed on exp/nbf.
    jwt_leeway: Seconds = Field(30.0, ge=0)
    # The claim naming the caller's tenant.
    jwt_tenant_claim: str = "tenant"
    # The claim listing the caller's grants (namespace/agent patterns).
    jwt_grants_claim: str = "par_grants"
    # How often the JWKS is fetched again.
    jwks_refresh_interval: Seconds = Field(300.0, gt=0)

    # Rate limiting: token bucket per (credential, agent).
    ratelimit_backend: Literal["memory", "redis"] = "memory"
    # Redis for the shared rate-limit state (ratelimit_backend redis).
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", validation_alias=AliasChoices("PAR_GATEWAY_REDIS_URL", "REDIS_URL")
    )
    # A Redis call slower than this counts as a failure.
    redis_timeout: Seconds = Field(0.25, gt=0)
    # Redis connection pool size.
    redis_max_connections: int = Field(64, ge=1)
    # Allow requests when Redis fails (default: deny with 503).
    ratelimit_fail_open: bool = False
    # Requests per second per key and agent when neither sets one.
    default_rate: float | None = Field(None, gt=0)
    # Burst per key and agent when neither sets one.
    default_burst: int | None = Field(None, ge=1)

    # Errors inside the decision deny (503) unless this is set.
    fail_open: bool = False

    # Tracing: the share of new traces (requests without a valid W3C `traceparent`) marked sampled,
    # 0.0-1.0; a request with one keeps its caller's decision (parent-based, as OpenTelemetry's
    # `parentbased_traceidratio`).
    trace_sample_ratio: float = Field(1.0, ge=0.0, le=1.0)

    # Request limits (both modes; authz mode checks the forwarded Content-Length).
    max_body_bytes: Bytes = Field(10 * 1024 * 1024, ge=0)
    # Larger request headers answer 431.
    max_header_bytes: Bytes = Field(16 * 1024, ge=256)

    # Proxy mode.
    upstreams: dict[str, str] = {}  # {"namespace/agent": "http://127.0.0.1:8099"} for StaticResolver
    # Proxy: how long the agent may take to answer.
    upstream_timeout: Seconds = Field(60.0, gt=0)
    # Proxy: how long connecting to the agent may take.
    upstream_connect_timeout: Seconds = Field(5.0, gt=0)
    # Proxy: connections kept open to agents.
    upstream_max_connections: int = Field(256, ge=1)

    def uvicorn_options(self) -> dict[str, Any]:
        """uvicorn.Config keywords the gateway needs, whoever starts the server (CLI or `par up`):
        it is the edge, so uvicorn must not take X-Forwarded-For from loopback peers at face value
        (the proxy appends the real peer itself), and in proxy mode the agent's own Date/Server
        headers pass through instead of uvicorn's being added."""
        proxy = self.mode == "proxy"
        return {
            "proxy_headers": False,
            "server_header": not proxy,
            "date_header": not proxy,
            "access_log": False,
        }

    @field_validator("jwt_algorithms", mode="before")
    @classmethod
    def _split_algorithms(cls, value: object) -> object:
        if isinstance(value, str) and not value.lstrip().startswith("["):
            return [part.strip() for part in value.split(",") if part.strip()]
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("jwt_algorithms")
    @classmethod
    def _only_asymmetric(cls, value: list[str]) -> list[str]:
        bad = sorted(set(value) - ASYMMETRIC_ALGORITHMS)
        if bad:
            raise ValueError(f"only asymmetric JWT algorithms are accepted, not {bad}")
        return value

    @field_validator("path_prefix")
    @classmethod
    def _clean_prefix(cls, value: str) -> str:
        value = value.rstrip("/")
        if value and (not value.startswith("/") or ".." in value.split("/") or "%" in value):
            raise ValueError(f"path prefix must be an absolute path without '..' or escapes: {value!r}")
        return value

    @field_validator("upstreams")
    @classmethod
    def _check_upstreams(cls, value: dict[str, str]) -> dict[str, str]:
        for target, url in value.items():
            namespace, _, agent = target.partition("/")
            if not namespace or not agent or "/" in agent:
                raise ValueError(f"upstream key must be 'namespace/agent', not {target!r}")
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"upstream for {target} must be an http(s) URL, not {url!r}")
        return value

    @field_validator("domain")
    @classmethod
    def _clean_domain(cls, value: str) -> str:
        return value.strip().lower().rstrip(".")
