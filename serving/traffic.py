"""Traffic split between the revisions of one agent, as in a Knative Service's `spec.traffic`."""

from __future__ import annotations

import random
from collections.abc import Mapping


class TrafficError(ValueError):
    """A split that does not add up to 100 % or names a version that is not deployed."""


def validate_split(split: Mapping[str, int], deployed: set[str]) -> dict[str, int]:
    """Check a `{version: percent}` split the way Knative validates `spec.traffic`."""
    if not split:
        raise TrafficError("traffic split is empty")
    unknown = sorted(set(split) - deployed)
    if unknown:
        raise TrafficError(f"traffic names versions that are not deployed: {', '.join(unknown)}")
    if any(p < 0 or p > 100 for p in split.values()):
        raise TrafficError("each traffic percent must be between 0 and 100")
    total = sum(split.values())
    if total != 100:
        raise TrafficError(f"traffic percents must add up to 100, not {total}")
    return dict(split)


def validate_tags(tags: Mapping[str, str], deployed: set[str]) -> dict[str, str]:
    """Check `{tag: version}` as Knative checks `spec.traffic[].tag`: each names a deployed version."""
    unknown = sorted(set(tags.values()) - deployed)
    if unknown:
        raise TrafficError(f"tags name versions that are not deployed: {', '.join(unknown)}")
    return dict(tags)


def pick_version(split: Mapping[str, int], rng: random.Random) -> str:
    """Choose the version for one request, weighted by percent."""
    versions = [v for v, p in split.items() if p > 0]
    weights = [split[v] for v in versions]
    return rng.choices(versions, weights=weights)[0]
