"""Revision names Knative accepts for every agent name the registry accepts, after any number of redeploys."""

from __future__ import annotations

import re

import pytest

from registry.knative.admission import check_service
from registry.knative.naming import MAX_AGENT_NAME, agent_name_problem, revision_name, traffic_tag

DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
VERSIONS = ["0.1.0", "1.0.0-RC.1", "2024.12.31-build.7+sha.5114f85", "9" * 64]


def _valid_revision(agent: str, name: str) -> None:
    assert DNS_1035.match(name) and len(name) <= 63, name
    assert name.startswith(f"{agent}-"), name  # Knative: `must have prefix "<service name>-"`
    check_service({"metadata": {"name": agent}, "spec": {"template": {"metadata": {"name": name}}}})


@pytest.mark.parametrize("length", [1, 2, 30, 47, 48, 53, MAX_AGENT_NAME])
def test_every_accepted_length_gives_valid_distinct_revision_names(length: int) -> None:
    agent = "a" * length
    assert agent_name_problem(agent) is None
    names = set()
    for version in VERSIONS:
        for suffix in [None, *(f"g{n}" for n in (2, 9, 10, 11, 99, 100, 12345, 10**9))]:
            name = revision_name(agent, version, suffix)
            _valid_revision(agent, name)
            assert name == revision_name(agent, version, suffix)  # deterministic
            names.add(name)
    assert len(names) == len(VERSIONS) * 9


def test_short_names_stay_readable() -> None:
    assert revision_name("demo-agent", "0.1.0") == "demo-agent-0-1-0"
    assert revision_name("demo-agent", "0.1.0", "g2") == "demo-agent-0-1-0-g2"
    assert revision_name("a" * 50, "1.2.3", "g7") == "a" * 50 + "-1-2-3-g7"
    hashed = revision_name("a" * 50, "1.2.3-beta.4", "g7")  # `1-2-3-beta-4-g7` does not fit in 12
    assert hashed.startswith("a" * 50 + "-1-2-") and len(hashed) == 63


def test_the_issue_lengths() -> None:
    """55-character names broke after one redeploy (`-g2`); 58-63 broke at once. Now the registry
    refuses them, saying why, and the longest accepted name (54) survives any redeploy."""
    for length in (55, 58, 63):
        problem = agent_name_problem("a" * length)
        assert problem and f"at most {MAX_AGENT_NAME}" in problem
    _valid_revision("a" * 54, revision_name("a" * 54, "0.1.0", "g2"))


@pytest.mark.parametrize("name", ["Demo", "1agent", "agent-", "under_score", ""])
def test_names_that_are_not_dns_1035_labels(name: str) -> None:
    assert "DNS-1035" in (agent_name_problem(name) or "")


def test_traffic_tags_are_dns_labels() -> None:
    for version in VERSIONS:
        tag = traffic_tag(version)
        assert DNS_1035.match(tag) and len(tag) <= 63
