"""Traffic splits are checked like Knative's `spec.traffic`, and requests follow the percents."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from serving.traffic import TrafficError, pick_version, validate_split


@pytest.mark.parametrize(
    ("split", "reason"),
    [
        ({}, "empty"),
        ({"1": 60, "2": 30}, "add up to 100, not 90"),
        ({"1": 100, "3": 0}, "not deployed: 3"),
        ({"1": 120, "2": -20}, "between 0 and 100"),
    ],
)
def test_bad_splits_are_refused_with_the_reason(split: dict[str, int], reason: str) -> None:
    with pytest.raises(TrafficError, match=reason):
        validate_split(split, {"1", "2"})


def test_requests_follow_the_percents_and_zero_gets_nothing() -> None:
    rng = random.Random(7)
    split = validate_split({"1": 80, "2": 20, "3": 0}, {"1", "2", "3"})

    seen = Counter(pick_version(split, rng) for _ in range(5000))

    assert seen["3"] == 0
    assert 0.77 < seen["1"] / 5000 < 0.83
