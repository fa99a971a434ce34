"""The registry's tables (SQLAlchemy 2 ORM). Schema changes go through Alembic migrations in
`registry/migrations/versions/`; this module must match the latest migration."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Dialect, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every database (SQLite hands back naive datetimes)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UTCDateTime}


class Namespace(Base):
    __tablename__ = "namespaces"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Agent(Base):
    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("namespace", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(ForeignKey("namespaces.name"), index=True)
    name: Mapped[str] = mapped_column(String(63))
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    rate: Mapped[float | None] = mapped_column(Float, nullable=True)
    burst: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    versions: Mapped[list[Version]] = relationship(
        back_populates="agent", cascade="all, delete-orphan", passive_deletes=True, order_by="Version.id"
    )
    deployment: Mapped[Deployment | None] = relationship(
        back_populates="agent", cascade="all, delete-orphan", passive_deletes=True
    )


class Version(Base):
    __tablename__ = "versions"
    __table_args__ = (UniqueConstraint("agent_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    version: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(Integer)
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    agent: Mapped[Agent] = relationship(back_populates="versions")


class Deployment(Base):
    """The desired state of one agent (traffic over versions, scaling, env) and what was observed."""

    __tablename__ = "deployments"
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    traffic: Mapped[list[Any]] = mapped_column(JSON)  # [{"version", "percent", "tag"}]
    history: Mapped[list[Any]] = mapped_column(JSON, default=list)  # earlier traffic, newest last
    # version -> {"name": revision name, "config": hash of the template it was created with}
    revisions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    min_scale: Mapped[int] = mapped_column(Integer, default=0)
    max_scale: Mapped[int | None] = mapped_column(Integer, nullable=True)
    target: Mapped[int | None] = mapped_column(Integer, nullable=True)
    container_concurrency: Mapped[int] = mapped_column(Integer, default=0)
    timeout_seconds: Mapped[int] = mapped_column(Integer, default=300)
    env: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # {"requests": {"cpu": "100m"}, "limits": {"memory": "256Mi"}}: as asked (registry/knative/resources.py)
    resources: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    broker: Mapped[str | None] = mapped_column(String(63), nullable=True)
    cluster_local: Mapped[bool] = mapped_column(Boolean, default=False)
    phase: Mapped[str] = mapped_column(String(16), default="deploying")
    url: Mapped[str | None] = mapped_column(String(512), nullable=True)
    conditions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    last_error: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    agent: Mapped[Agent] = relationship(back_populates="deployment")


class Trigger(Base):
    __tablename__ = "triggers"
    __table_args__ = (UniqueConstraint("namespace", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(ForeignKey("namespaces.name"), index=True)
    name: Mapped[str] = mapped_column(String(63))
    broker: Mapped[str] = mapped_column(String(63), default="default")
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # Knative spec.filter.attributes
    # Knative spec.filters: [{"prefix": {"type": "order."}}, {"cesql": "..."}, ...]
    dialect_filters: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default="[]")
    subscriber_agent: Mapped[str | None] = mapped_column(String(63), nullable=True)
    subscriber_uri: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    delivery: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ordering: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(12), primary_key=True)  # gateway.apikeys key id
    hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    tenant: Mapped[str] = mapped_column(String(63), default="default")
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # "agents": calls agents through the gateway (as its grants allow; admin keys also the registry);
    # "gateway": reads the gateway's snapshot feed and nothing else (not in the snapshot itself).
    role: Mapped[str] = mapped_column(String(16), default="agents", server_default="agents")
    grants: Mapped[list[Any]] = mapped_column(JSON, default=list)
    rate: Mapped[float | None] = mapped_column(Float, nullable=True)
    burst: Mapped[int | None] = mapped_column(Integer, nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Meta(Base):
    """Small named values: `epoch` (random per database) and `revision` (the gateway feed counter)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(64))
