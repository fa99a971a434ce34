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

    mode: Literal["authz", "proxy"] = "authz"
    host: str = "127.0.0.1"
    port: int = Field(8080, validation_alias=AliasChoices("PORT", "PAR_GATEWAY_PORT"))
    log_level: str = "INFO"

    # Targets: Host `{agent}.{namespace}.{domain}` as Knative routes them.
    domain: str = DEFAULT_DOMAIN
    # Kourier prepends this to the original path of every check request.
    path_prefix: str = Field(
        "", validation_alias=AliasChoices("KOURIER_EXTAUTHZ_PATHPREFIX", "PAR_GATEWAY_PATH_PREFIX")
    )

    # Policy feed: the registry snapshot (contract 4) or a static file of the same shape.
    registry_url: str | None = Field(None, validation_alias=AliasChoices("PAR_REGISTRY_URL"))
    registry_key: str | None = Field(
        None, validation_alias=AliasChoices("PAR_GATEWAY_REGISTRY_KEY", "PAR_API_KEY", "PAR_ADMIN_KEY")
    )
    policy_file: str | None = None
    refresh_interval: Seconds = Field(2.0, gt=0)
    # Serve from the last good snapshot at most this long after the feed stopped answering.
    max_staleness: Seconds = Field(60.0, gt=0)

    # JWT bearer tokens (optional): a JWKS URL or one configured public key (PEM text or file path).
    jwt_jwks_url: str | None = None
    jwt_public_key: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_algorithms: Annotated[list[str], NoDecode] = ["RS256", "ES256"]
    jwt_leeway: Seconds = Field(30.0, ge=0)
    jwt_tenant_claim: str = "tenant"
    jwt_grants_claim: str = "par_grants"
    jwks_refresh_interval: Seconds = Field(300.0, gt=0)

    # Rate limiting: token bucket per (credential, agent).
    ratelimit_backend: Literal["memory", "redis"] = "memory"
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", validation_alias=AliasChoices("PAR_GATEWAY_REDIS_URL", "REDIS_URL")
    )
    redis_timeout: Seconds = Field(0.25, gt=0)
    redis_max_connections: int = Field(64, ge=1)
    ratelimit_fail_open: bool = False
    default_rate: float | None = Field(None, gt=0)
    default_burst: int | None = Field(None, ge=1)

    # Errors inside the decision deny (503) unless this is set.
    fail_open: bool = False

    # Request limits (both modes; authz mode checks the forwarded Content-Length).
    max_body_bytes: Bytes = Field(10 * 1024 * 1024, ge=0)
    max_header_bytes: Bytes = Field(16 * 1024, ge=256)

    # Proxy mode.
    upstreams: dict[str, str] = {}  # {"namespace/agent": "http://127.0.0.1:8099"} for StaticResolver
    upstream_timeout: Seconds = Field(60.0, gt=0)
    upstream_connect_timeout: Seconds = Field(5.0, gt=0)
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
