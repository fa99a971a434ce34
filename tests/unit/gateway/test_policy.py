"""Snapshot parsing, wildcard grants and which rate limit applies."""

import pydantic
import pytest

from gateway.hosts import Target
from gateway.policy import AgentRecord, Grants, Limit, Policy, effective_limit
from tests.support.gateway import agent, make_key, snapshot


@pytest.mark.parametrize(
    ("patterns", "target", "allowed"),
    [
        (["default/*"], Target("default", "demo-agent"), True),
        (["default/*"], Target("other", "demo-agent"), False),
        (["*/*"], Target("anything", "at-all"), True),
        (["default/demo-*"], Target("default", "demo-agent"), True),
        (["default/demo-*"], Target("default", "other"), False),
        (["default/demo-agen?"], Target("default", "demo-agent"), True),
        (["team-?/x"], Target("team-a", "x"), True),
        (["default/demo-agent"], Target("default", "demo-agent-2"), False),
        (["*"], Target("default", "demo-agent"), False),  # not ns/agent: grants nothing
        (["default/*/x"], Target("default", "demo-agent"), False),
        (["default/[a-z]*"], Target("default", "demo-agent"), False),  # classes are not supported
        (["def.ult/*"], Target("default", "demo-agent"), False),  # '.' is literal, never a regex
        ([], Target("default", "demo-agent"), False),
        (["nope/*", "default/demo-agent"], Target("default", "demo-agent"), True),
    ],
)
def test_grants(patterns: list[str], target: Target, allowed: bool) -> None:
    assert Grants(patterns).allows(target) is allowed


def test_star_does_not_cross_the_slash() -> None:
    assert not Grants(["d*/x"]).allows(Target("default", "y/x"))


def test_snapshot_is_indexed_by_key_id_and_target() -> None:
    _, record = make_key(tenant="acme", expires_at="2030-01-01T00:00:00Z", rate=5, burst=10)
    policy = Policy.from_snapshot(snapshot([record], [agent(public=True, rate=2)], revision="7"))
    assert policy.revision == "7"
    stored = policy.keys[record["id"]]
    assert stored.tenant == "acme" and stored.rate == 5 and stored.burst == 10
    assert stored.expires_at == pytest.approx(1893456000.0)
    assert policy.agents[Target("default", "demo-agent")] == AgentRecord(public=True, rate=2, burst=None)


@pytest.mark.parametrize(
    "bad",
    [
        {"keys": []},  # no revision
        {"revision": "1", "keys": [{"id": "x"}]},
        {"revision": "1", "keys": [], "agents": [{"namespace": "default", "name": "a", "rate": -1}]},
        {"revision": "1", "keys": [{**make_key()[1], "burst": 0}]},
    ],
)
def test_malformed_snapshots_are_rejected(bad: dict) -> None:
    with pytest.raises(pydantic.ValidationError):
        Policy.from_snapshot(bad)


def test_agent_limit_overrides_the_key_and_defaults_fill_gaps() -> None:
    limited_agent = AgentRecord(public=False, rate=1.0, burst=3)
    assert effective_limit(limited_agent, 10.0, 20, None, None) == Limit(1.0, 3)
    assert effective_limit(AgentRecord(False, None, None), 10.0, 20, None, None) == Limit(10.0, 20)
    assert effective_limit(None, 10.0, None, None, None) == Limit(10.0, 10)
    assert effective_limit(None, 0.5, None, None, None) == Limit(0.5, 1)
    assert effective_limit(None, None, None, None, None) is None
    assert effective_limit(None, None, None, 4.0, 8) == Limit(4.0, 8)
    assert effective_limit(AgentRecord(False, None, 2), 10.0, 20, None, None) == Limit(10.0, 2)
