"""Kubernetes names derived from agents and versions (DNS-1035 labels, at most 63 characters).

A revision PAR names itself must be called `{service}-{something}`: Knative's webhook refuses a
template name without the `<service name>-` prefix (knative/serving `ValidateRevisionName`), and
every name is a DNS-1035 label of at most 63 characters. Knative fits the names *it* generates
with `kmeta.ChildName` (cut the parent, add an MD5 of it); that cut would lose the prefix, so PAR
keeps the agent whole and hashes the other end: `{agent}-{version slug}[-g{generation}]`, and when
that is too long, as much of the slug as fits, then `-` and the first 8 hex digits of the SHA-256
of the whole tail (deterministic, distinct tails stay distinct). Room for `-` plus the 8-digit
hash is why agent names are at most 54 characters (`MAX_AGENT_NAME`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

_NOT_DNS = re.compile(r"[^a-z0-9]+")
LONGEST = 63  # a DNS label
HASH_LENGTH = 8
MAX_AGENT_NAME = LONGEST - 1 - HASH_LENGTH
_DNS_1035 = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")


def agent_name_problem(name: str) -> str | None:
    """Why `name` cannot be an agent (a Knative Service) name, or None when it can."""
    if not _DNS_1035.match(name):
        return f"{name!r} is not a DNS-1035 label: lowercase letters, digits and '-', starting with a letter"
    if len(name) > MAX_AGENT_NAME:
        return (
            f"{name!r} is {len(name)} characters; agent names are at most {MAX_AGENT_NAME} so that "
            f"Knative revision names `{{agent}}-{{version}}` fit in {LONGEST}"
        )
    return None


def version_slug(version: str) -> str:
    """`0.1.0` -> `0-1-0`; `1.0.0-RC.1` -> `1-0-0-rc-1`."""
    return _NOT_DNS.sub("-", version.lower()).strip("-") or "v"


def _hashed(tail: str, room: int) -> str:
    """`tail` within `room` characters: kept when it fits, else its head, `-`, an 8-digit hash."""
    if len(tail) <= room:
        return tail
    digest = hashlib.sha256(tail.encode()).hexdigest()[:HASH_LENGTH]
    head = tail[: max(room - HASH_LENGTH - 1, 0)].rstrip("-")
    return f"{head}-{digest}" if head else digest[: max(room, 1)]


def revision_name(agent: str, version: str, suffix: str | None = None) -> str:
    """The Knative revision that serves one version: `{agent}-{version slug}`, plus `-{suffix}`
    when the version is redeployed with another configuration (Knative revisions are immutable)."""
    tail = version_slug(version) + (f"-{suffix}" if suffix else "")
    return f"{agent}-{_hashed(tail, LONGEST - len(agent) - 1)}"


def traffic_tag(version: str) -> str:
    """The default traffic tag of a version, `v{slug}`; the version answers at `{tag}-{agent}...`."""
    return _hashed(f"v{version_slug(version)}", LONGEST)


def target_tag(target: Mapping[str, Any]) -> str:
    """A stored traffic target's tag: the one it was given, else its version's default."""
    return str(target.get("tag") or traffic_tag(target["version"]))


def tag_url(agent_url: str | None, agent: str, tag: str) -> str | None:
    """The URL a tag answers at, as Knative routes tags: `{tag}-{agent}` in place of the agent's
    first host label (`http://my-agent.default.example.com` -> `http://v2-my-agent.default...`)."""
    if not agent_url:
        return None
    scheme, sep, rest = agent_url.partition("://")
    if not sep or not rest.startswith(f"{agent}."):
        return None
    return f"{scheme}://{tag}-{rest}"


def target_revision(revisions: Mapping[str, Any], agent: str, version: str) -> str:
    """The revision a version's traffic goes to: the name the registry gave it, else the first."""
    return str(revisions.get(version, {}).get("name") or revision_name(agent, version))
