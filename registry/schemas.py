"""Request and response bodies of the registry API (pydantic models, shown in OpenAPI at /docs)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from registry.knative.naming import agent_name_problem
from runtime import quantity

DnsLabel = Annotated[str, StringConstraints(pattern=r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")]


def _agent_name(name: str) -> str:
    problem = agent_name_problem(name)
    if problem:
        raise ValueError(problem)
    return name


AgentName = Annotated[str, AfterValidator(_agent_name)]  # a Knative Service name with room for revisions
GrantPattern = Annotated[str, StringConstraints(pattern=r"^[a-z0-9*?\[\]-]+/[a-z0-9*?\[\]-]+$")]

T = TypeVar("T")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Set by Knative (the runtime contract) or by the registry (the package the revision runs).
RESERVED_ENV = frozenset(
    {"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION", "PACKAGE_URL", "PACKAGE_SHA256"}
)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None  # pass as ?cursor= for the next page; null on the last page


class AgentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: AgentName
    public: bool = False
    rate: float | None = Field(None, gt=0)  # requests/second override for every key on this agent
    burst: int | None = Field(None, ge=1)


class AgentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    public: bool | None = None
    rate: float | None = Field(None, gt=0)
    burst: int | None = Field(None, ge=1)


class StatusOut(BaseModel):
    phase: str
    url: str | None = None
    conditions: list[dict[str, Any]] = []
    message: str | None = None


class ServingOut(BaseModel):
    version: str
    percent: int


class AgentOut(BaseModel):
    namespace: str
    name: str
    public: bool
    rate: float | None
    burst: int | None
    created_at: datetime
    latest_version: str | None = None  # the newest upload, deployed or not
    serving: list[ServingOut] = []  # the versions taking traffic (percent > 0), oldest upload first
    status: StatusOut = StatusOut(phase="absent")


class VersionOut(BaseModel):
    namespace: str
    agent: str
    version: str
    sha256: str
    size: int
    created_at: datetime
    manifest: dict[str, Any]
    artifact_url: str


class TrafficTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str
    percent: int = Field(ge=0, le=100)
    tag: DnsLabel | None = None


class TrafficTargetOut(TrafficTarget):
    revision: str
    url: str | None = None  # where the tag alone answers (Knative's status.traffic[].url)


class TrafficRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    traffic: list[TrafficTarget] = Field(min_length=1)

    @model_validator(mode="after")
    def _sums_to_100(self) -> TrafficRequest:
        names = [t.version for t in self.traffic]
        if len(set(names)) != len(names):
            raise ValueError("each version may appear once in traffic")
        total = sum(t.percent for t in self.traffic)
        if total != 100:
            raise ValueError(f"traffic percents must sum to 100, not {total}")
        return self


def _quantity(value: str | None) -> str | None:
    if value is not None and quantity.parse(value) <= 0:
        raise ValueError(f"{value!r} must be more than zero")
    return value


ResourceName = Literal["cpu", "memory"]
Quantity = Annotated[str | None, AfterValidator(_quantity)]  # `500m`, `256Mi`; null: the default


class ResourcesIn(BaseModel):
    """A Knative container's `resources`; each value given replaces the deployment's, null drops it."""

    model_config = ConfigDict(extra="forbid")
    requests: dict[ResourceName, Quantity] = {}
    limits: dict[ResourceName, Quantity] = {}


class ResourcesOut(BaseModel):
    """What the deployment asked; what it left out is the platform's default."""

    requests: dict[str, str] = {}
    limits: dict[str, str] = {}


class DeployRequest(BaseModel):
    """Fields left out keep the agent's current deployment values (Knative defaults at first)."""

    model_config = ConfigDict(extra="forbid")
    version: str | None = None  # default: the latest uploaded version
    min_scale: int = Field(0, ge=0)
    max_scale: int | None = Field(None, ge=0)
    target: int | None = Field(None, ge=1)
    container_concurrency: int = Field(0, ge=0)
    timeout_seconds: int = Field(300, ge=1)  # at most the cluster's max (registry.knative.admission)
    env: dict[str, str] = {}
    resources: ResourcesIn | None = None  # at most PAR_MAX_CPU_LIMIT / PAR_MAX_MEMORY_LIMIT
    broker: DnsLabel | None = "default"
    cluster_local: bool | None = None

    @model_validator(mode="after")
    def _env_names(self) -> DeployRequest:
        for name in self.env:
            if not ENV_NAME.match(name):
                raise ValueError(f"env name {name!r} is not a valid variable name")
            if name in RESERVED_ENV:
                raise ValueError(f"env {name} is set by the platform and cannot be given")
        return self


class DeploymentOut(BaseModel):
    namespace: str
    agent: str
    generation: int
    traffic: list[TrafficTargetOut]
    min_scale: int
    max_scale: int | None
    target: int | None
    container_concurrency: int
    timeout_seconds: int
    env: dict[str, str]
    resources: ResourcesOut = ResourcesOut()
    broker: str | None
    cluster_local: bool
    status: StatusOut
    updated_at: datetime


class TriggerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: DnsLabel
    broker: DnsLabel = "default"
    # A mapping: exact attribute matches (Knative `spec.filter.attributes`). A list: Knative's
    # `spec.filters`, e.g. [{"prefix": {"type": "order."}}, {"cesql": "source LIKE '/shop/%'"}]
    # (exact, prefix, suffix, all, any, not, cesql); every entry must match.
    filters: dict[str, str] | list[dict[str, Any]] = {}
    sink_agent: DnsLabel | None = None
    sink_uri: str | None = None
    delivery: dict[str, Any] = {}
    ordering: Literal["ordered", "unordered"] | None = None

    @model_validator(mode="after")
    def _one_sink(self) -> TriggerCreate:
        if (self.sink_agent is None) == (self.sink_uri is None):
            raise ValueError("give exactly one of sink_agent or sink_uri")
        return self


class TriggerOut(TriggerCreate):
    namespace: str
    created_at: datetime


KeyRole = Literal["agents", "gateway"]


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=200)
    tenant: DnsLabel = "default"
    admin: bool = False
    # "gateway": a key that can only read /v1/gateway/snapshot (no grants, no admin, no agents).
    role: KeyRole = "agents"
    grants: list[GrantPattern] | None = None  # default: ["{tenant}/*"]
    rate: float | None = Field(None, gt=0)
    burst: int | None = Field(None, ge=1)
    expires_at: datetime | None = None

    @model_validator(mode="after")
    def _gateway_role_only_reads_the_feed(self) -> KeyCreate:
        if self.role == "gateway" and (self.admin or self.grants):
            raise ValueError("a gateway key reads the snapshot feed only: it takes no admin and no grants")
        return self


class _KeyPolicy(BaseModel):
    """What a key may do: shared by the API's view of a key and the gateway's snapshot."""

    tenant: str
    admin: bool
    grants: list[str]
    rate: float | None
    burst: int | None
    revoked: bool
    expires_at: datetime | None


class KeyOut(_KeyPolicy):
    id: str
    name: str | None
    role: str = "agents"
    created_at: datetime


class KeyCreated(KeyOut):
    key: str  # the secret, shown this once


class SnapshotKey(_KeyPolicy):
    id: str
    hash: str  # SHA-256 hex of the key text (gateway.apikeys.hash_key)


class SnapshotAgent(BaseModel):
    namespace: str
    name: str
    public: bool
    rate: float | None
    burst: int | None
    tags: list[str] = []  # its traffic tags: the gateway routes `{tag}-{name}.{namespace}.{domain}`


class Snapshot(BaseModel):
    revision: str
    keys: list[SnapshotKey]
    agents: list[SnapshotAgent]
