"""Kubernetes names derived from agents and versions (DNS-1123 labels, at most 63 characters)."""

from __future__ import annotations

import hashlib
import re

_NOT_DNS = re.compile(r"[^a-z0-9]+")


def version_slug(version: str) -> str:
    """`0.1.0` -> `0-1-0`; `1.0.0-RC.1` -> `1-0-0-rc-1`."""
    return _NOT_DNS.sub("-", version.lower()).strip("-") or "v"


def _fit(name: str) -> str:
    """Shorten an over-long name deterministically (prefix + short hash), keeping it a DNS label."""
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:54].rstrip('-')}-{digest}"


def revision_name(agent: str, version: str, suffix: str | None = None) -> str:
    """The Knative revision that serves one version: `{agent}-{version slug}`, plus `-{suffix}`
    when the version is redeployed with another configuration (Knative revisions are immutable)."""
    return _fit(f"{agent}-{version_slug(version)}" + (f"-{suffix}" if suffix else ""))


def traffic_tag(version: str) -> str:
    """The default traffic tag of a version, `v{slug}`; the version answers at `{tag}-{agent}...`."""
    return _fit(f"v{version_slug(version)}")
