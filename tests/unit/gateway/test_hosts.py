"""Host -> (namespace, agent): the Knative forms, normalisation, and tricks that must not resolve."""

import pytest

from gateway.hosts import HostResolver, Target

DEMO = Target("default", "demo-agent")


@pytest.fixture
def hosts() -> HostResolver:
    return HostResolver("127.0.0.1.sslip.io")


@pytest.mark.parametrize(
    "host",
    [
        "demo-agent.default.127.0.0.1.sslip.io",
        "demo-agent.default",
        "demo-agent.default.svc",
        "demo-agent.default.svc.cluster.local",
        "demo-agent.default.127.0.0.1.sslip.io:8080",
        "DEMO-Agent.Default.127.0.0.1.SSLIP.io",
        "demo-agent.default.127.0.0.1.sslip.io.",
        "demo-agent.default.svc.cluster.local.:443",
        "demo-agent.default:80",
    ],
)
def test_accepted_forms_and_normalisation(hosts: HostResolver, host: str) -> None:
    assert hosts.resolve(host) == DEMO


@pytest.mark.parametrize(
    "host",
    [
        "",
        "localhost",
        "127.0.0.1:8096",
        "demo-agent",
        "demo-agent..default",
        ".demo-agent.default",
        "demo-agent.default..",
        "x.demo-agent.default.127.0.0.1.sslip.io",
        "demo-agent.default.example.com",
        "demo-agent.default.svc.cluster",
        "demo-agent.default.127.0.0.1.sslip.io:abc",
        "demo-agent.default:80:80",
        "d\u0435mo-agent.default",  # Cyrillic e (IDN homograph)
        "demo-agent.défault.127.0.0.1.sslip.io",
        "[::1]:8080",
        "1demo.default",  # agent names start with a letter
        "demo-agent.-default",
        "demo_agent.default",
        "demo-agent.default/evil",
        "a" * 64 + ".default",
    ],
)
def test_tricks_resolve_to_nothing(hosts: HostResolver, host: str) -> None:
    assert hosts.resolve(host) is None


def test_punycode_label_is_its_own_name_never_the_lookalike(hosts: HostResolver) -> None:
    # "demo-agent" with a Cyrillic e, as a browser would encode it
    target = hosts.resolve("xn--dmo-agent-7gg.default")
    assert target is not None and target != DEMO


def test_custom_domain_replaces_the_default() -> None:
    hosts = HostResolver("agents.example.com")
    assert hosts.resolve("demo-agent.default.agents.example.com") == DEMO
    assert hosts.resolve("demo-agent.default.127.0.0.1.sslip.io") is None


def test_cache_stays_bounded_and_correct(hosts: HostResolver) -> None:
    for i in range(5000):
        assert hosts.resolve(f"a{i}.default") == Target("default", f"a{i}")
    assert len(hosts._cache) <= 4096
    assert hosts.resolve("demo-agent.default") == DEMO
