"""The policy the gateway enforces: keys, grants and per-agent settings from one registry snapshot.

The wire shape is contract 4 (`GET /v1/gateway/snapshot`). A snapshot is validated once when it
arrives and turned into lookup tables, so a decision costs dictionary lookups, never I/O.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from gateway.hosts import Target

log = logging.getLogger(__name__)

_GLOB_PART = re.compile(r"[a-z0-9*?-]+")


class KeyModel(BaseModel):
    id: str
    hash: str
    tenant: str
    admin: bool = False
    grants: list[str] = []
    rate: float | None = Field(None, gt=0)
    burst: int | None = Field(None, ge=1)
    revoked: bool = False
    expires_at: datetime | None = None


class AgentModel(BaseModel):
    namespace: str
    name: str
    public: bool = False
    rate: float | None = Field(None, gt=0)
    burst: int | None = Field(None, ge=1)
    tags: list[str] = []  # its traffic tags: `{tag}-{name}` routes to that tag's version


class SnapshotModel(BaseModel):
    revision: str
    keys: list[KeyModel] = []
    agents: list[AgentModel] = []


class Grants:
    """`namespace/agent` glob patterns (`*` and `?` within one part) compiled into one regex.

    A pattern without exactly one `/`, or with characters no name can hold, is ignored and
    logged: a typo must grant nothing rather than something unexpected."""

    __slots__ = ("_regex", "patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        parts = [_translate(p) for p in self.patterns]
        valid = [p for p in parts if p is not None]
        self._regex = re.compile("|".join(valid)) if valid else None

    def allows(self, target: Target) -> bool:
        return (
            self._regex is not None
            and self._regex.fullmatch(f"{target.namespace}/{target.agent}") is not None
        )


def _translate(pattern: str) -> str | None:
    halves = pattern.strip().lower().split("/")
    if len(halves) != 2 or not all(_GLOB_PART.fullmatch(h) for h in halves):
        log.warning("ignoring malformed grant", extra={"grant": pattern})
        return None
    return "/".join(re.escape(h).replace(r"\*", "[^/]*").replace(r"\?", "[^/]") for h in halves)


@dataclass(frozen=True, slots=True)
class Limit:
    """Token-bucket parameters: `rate` tokens per second, at most `burst` stored."""

    rate: float
    burst: int


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    hash: str
    tenant: str
    admin: bool
    grants: Grants
    rate: float | None
    burst: int | None
    revoked: bool
    expires_at: float | None  # POSIX seconds


@dataclass(frozen=True, slots=True)
class AgentRecord:
    public: bool
    rate: float | None
    burst: int | None


@dataclass(frozen=True, slots=True)
class Policy:
    revision: str
    keys: dict[str, KeyRecord]
    agents: dict[Target, AgentRecord]
    tag_routes: dict[Target, Target] = field(default_factory=dict)  # as parsed -> agent with tag

    def target(self, parsed: Target) -> Target:
        """The agent a parsed host names: itself, or the agent whose traffic tag the host's first
        label starts with (`v2-my-agent` -> my-agent, tag v2). Agent names win over tag routes,
        as a Knative Service's own route exists before any tag's."""
        if parsed in self.agents:
            return parsed
        return self.tag_routes.get(parsed, parsed)

    @classmethod
    def from_snapshot(cls, data: object) -> Policy:
        """Validate a decoded snapshot (raises pydantic.ValidationError on a malformed one)."""
        return cls._build(SnapshotModel.model_validate(data))

    @classmethod
    def from_json(cls, text: str | bytes) -> Policy:
        return cls._build(SnapshotModel.model_validate_json(text))

    @classmethod
    def _build(cls, snap: SnapshotModel) -> Policy:
        keys = {
            k.id: KeyRecord(
                id=k.id,
                hash=k.hash.lower(),
                tenant=k.tenant,
                admin=k.admin,
                grants=Grants(k.grants),
                rate=k.rate,
                burst=k.burst,
                revoked=k.revoked,
                expires_at=_posix(k.expires_at) if k.expires_at else None,
            )
            for k in snap.keys
        }
        agents = {
            Target(a.namespace, a.name): AgentRecord(public=a.public, rate=a.rate, burst=a.burst)
            for a in snap.agents
        }
        tag_routes = {
            Target(a.namespace, f"{tag}-{a.name}"): Target(a.namespace, a.name, tag)
            for a in snap.agents
            for tag in a.tags
        }
        return cls(revision=snap.revision, keys=keys, agents=agents, tag_routes=tag_routes)


def _posix(moment: datetime) -> float:
    """A timestamp without a zone is UTC (SQLite hands back naive datetimes)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def effective_limit(
    agent: AgentRecord | None,
    rate: float | None,
    burst: int | None,
    default_rate: float | None,
    default_burst: int | None,
) -> Limit | None:
    """The agent's own rate/burst override the credential's, which override the defaults;
    no rate anywhere means no limit. A missing burst allows one second's worth (at least 1)."""
    if agent is not None and agent.rate is not None:
        rate, burst = agent.rate, agent.burst if agent.burst is not None else burst
    elif agent is not None and agent.burst is not None:
        burst = agent.burst
    if rate is None:
        rate, burst = default_rate, burst if burst is not None else default_burst
    if rate is None:
        return None
    if burst is None:
        burst = default_burst if default_burst is not None else max(1, int(rate))
    return Limit(rate=rate, burst=burst)
