"""The registry's configuration: one pydantic-settings object read from the environment.

Standard names where they exist (`DATABASE_URL`, `KUBECONFIG` is read by the kubernetes client
itself), `PAR_`-prefixed otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from runtime import quantity
from runtime.settingtypes import Bytes, Seconds, WholeSeconds


class RegistrySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAR_", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(Path.home() / ".par", description="SQLite file, artifacts, admin.key")
    database_url: str | None = Field(
        None,
        validation_alias=AliasChoices("DATABASE_URL", "PAR_DATABASE_URL"),
        description="SQLAlchemy URL; postgresql://... uses asyncpg. Default: SQLite in data_dir.",
    )
    sqlite_connections: int = Field(
        2, ge=1, description="SQLite connections: each is a thread, and more threads only contend for the GIL"
    )
    db_timeout: Seconds = Field(
        5.0, gt=0, description="Seconds to wait for the database before answering 503"
    )
    read_cache_seconds: Seconds = Field(
        1.0,
        ge=0,
        description="How long GET of an agent may be served from memory (0: never); see readcache.py",
    )
    auth_cache_seconds: Seconds = Field(
        2.0, ge=0, description="How long a verified key is trusted without a lookup"
    )
    admin_key: str | None = Field(None, description="A par_ key to use as the admin key (else generated)")
    gateway_key: str | None = Field(
        None, description="A par_ key to install as a gateway key (reads /v1/gateway/snapshot, nothing else)"
    )
    public_url: str | None = Field(
        None, description="Base URL runtimes use to download artifacts (default http://127.0.0.1:<port>)"
    )
    deploy_backend: Literal["recording", "knative"] = "recording"  # `par up` passes its own backend
    runtime_image: str = "ghcr.io/pixell/par-runtime:0.1.0"  # the image of every agent's Knative Service
    domain: str = Field("example.com", description="Agents answer at {agent}.{namespace}.{domain}")
    broker_ingress_url: str = Field(
        "http://kafka-broker-ingress.knative-eventing.svc.cluster.local/{namespace}/{broker}",
        description="K_SINK template for an agent's broker",
    )
    cluster_local: bool = Field(False, description="Default visibility: networking.knative.dev/visibility")
    dead_letters_url: str | None = Field(
        None, description="The dead-letter store the registry's /dead-letters routes use (par up: its own; "
        "Knative: http://par-dead-letters.par-system.svc.cluster.local)",
    )
    dead_letters_token: str | None = Field(None, description="Bearer token of that store, if it has one")
    # An agent container's resources where its deployment sets none (registry/knative/resources.py)...
    runtime_cpu_request: str = "100m"
    runtime_memory_request: str = "256Mi"
    runtime_cpu_limit: str = "1"
    runtime_memory_limit: str = "1Gi"
    # ... and the most a deployment may ask for (more is refused with 422 naming the field).
    max_cpu_limit: str = Field("4", description="Largest cpu request/limit a deployment may ask")
    max_memory_limit: str = Field("4Gi", description="Largest memory request/limit a deployment may ask")
    # Each agent namespace on Kubernetes gets a NetworkPolicy, a ResourceQuota, a LimitRange (tenancy.py).
    tenant_objects: bool = Field(True, description="Apply them when a namespace gets its first agent")
    create_namespaces: bool = Field(
        True,
        description="Knative: create an agent's namespace when it does not exist (else a deploy there is a "
        "422 namespace_not_found)",
    )
    tenant_ingress_namespaces: Annotated[tuple[str, ...], NoDecode] = Field(
        (
            "kourier-system",
            "istio-system",
            "contour-external",
            "contour-internal",
            "projectcontour",
            "envoy-gateway-system",
            "knative-serving",
            "knative-eventing",
        ),
        description="Namespaces agent pods accept traffic from (comma-separated): the ingress's (Kourier, "
        "Istio, Contour as net-contour or Gateway API installs it, Envoy Gateway), Knative Serving's "
        "activator, the eventing dispatcher",
    )
    tenant_ingress_namespace_labels: Annotated[dict[str, str], NoDecode] = Field(
        {"par.pixell.ai/ingress": "true"},
        description="Namespaces with these labels (`key=value,...`; empty: none) are admitted too, "
        "as a NetworkPolicy namespaceSelector: label another ingress's namespace instead of listing it",
    )
    tenant_quota: dict[str, str] = Field(
        {"requests.cpu": "10", "requests.memory": "20Gi", "limits.cpu": "20", "limits.memory": "40Gi",
         "pods": "100"},
        description="The ResourceQuota's `hard` per agent namespace (JSON)",
    )
    kafka_broker_config: str = Field("kafka-broker-config", description="ConfigMap of Kafka-class Brokers")
    max_package_bytes: Bytes = Field(200 * 1024 * 1024, ge=1, description="Largest APKG upload accepted")
    max_revision_timeout_seconds: WholeSeconds = Field(
        600, ge=1, description="config-defaults max-revision-timeout-seconds (Knative: 600)"
    )
    container_concurrency_max_limit: int = Field(
        1000, ge=1, description="config-defaults container-concurrency-max-limit (Knative: 1000)"
    )
    watch_seconds: Seconds = Field(600.0, gt=0, description="How long a deploy is watched for readiness")

    # The console (registry.console).
    gateway_url: str | None = Field(
        None, description="The gateway the console calls agents through (its invoke form); unset: no form"
    )
    console_metrics_url: str | None = Field(
        None,
        description="Comma-separated Prometheus /metrics URLs (the gateway's, the broker's) the "
        "console's charts and trigger counts are read from; unset: none shown",
    )
    console_trusted_proxies: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Addresses or CIDRs (comma-separated) of TLS-terminating proxies whose X-Forwarded-Proto "
        "the console believes (its session cookie is Secure when the original request was HTTPS)",
    )

    # Client side (the `par` commands that talk to a registry).
    registry_url: str | None = Field(None, description="Registry the CLI talks to (default: see client.py)")
    api_key: str | None = Field(None, description="Key the CLI sends (default: <data_dir>/admin.key)")

    @field_validator("tenant_ingress_namespaces", mode="before")
    @classmethod
    def _names(cls, value: object) -> object:
        """`kourier-system,knative-serving` as the environment writes it."""
        if isinstance(value, str):
            return tuple(name for name in value.replace(" ", "").split(",") if name)
        return value

    @field_validator("tenant_ingress_namespace_labels", mode="before")
    @classmethod
    def _labels(cls, value: object) -> object:
        """`par.pixell.ai/ingress=true,team=edge` as the environment writes it (a JSON object also)."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("{"):
                import json

                return json.loads(text)
            pairs = [part.split("=", 1) for part in text.replace(" ", "").split(",") if part]
            if any(len(pair) != 2 or not pair[0] for pair in pairs):
                raise ValueError(f"{value!r} is not key=value[,key=value...]")
            return dict(pairs)
        return value

    @field_validator("gateway_key")
    @classmethod
    def _gateway_key(cls, value: str | None, info: ValidationInfo) -> str | None:
        from gateway.apikeys import parse_key_id

        if value and parse_key_id(value) is None:
            raise ValueError("not a PAR API key (par_<12 hex>_<43 chars>)")
        if value and value == info.data.get("admin_key"):
            raise ValueError("is the admin key: give the gateway a key of its own")
        return value

    @field_validator("console_trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        import ipaddress

        if isinstance(value, str):
            value = tuple(part for part in value.replace(" ", "").split(",") if part)
        for part in value if isinstance(value, tuple | list) else ():
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise ValueError(f"{part!r} is not an IP address or CIDR") from None
        return value

    @field_validator("tenant_quota")
    @classmethod
    def _quota(cls, value: dict[str, str]) -> dict[str, str]:
        for key, amount in value.items():
            try:
                quantity.parse(amount)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
        return value

    @field_validator(
        "runtime_cpu_request", "runtime_memory_request", "runtime_cpu_limit", "runtime_memory_limit",
        "max_cpu_limit", "max_memory_limit",
    )
    @classmethod
    def _quantity(cls, value: str) -> str:
        quantity.parse(value)  # a ValueError naming what is accepted
        return value

    def sqlalchemy_url(self) -> str:
        """The async driver URL: the SQLite file by default, asyncpg for postgresql:// URLs."""
        url = self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'registry.db'}"
        for plain in ("postgresql://", "postgres://"):
            if url.startswith(plain):
                return "postgresql+asyncpg://" + url[len(plain) :]
        if url.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
        return url

    def artifact_base(self, port: int) -> str:
        return (self.public_url or f"http://127.0.0.1:{port}").rstrip("/")
