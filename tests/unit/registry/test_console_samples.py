"""The console's numbers from Prometheus text: per-agent rate and mean latency between scrapes
(surviving a gateway restart), per-trigger delivery counts."""

from __future__ import annotations

import pytest

from registry.console.samples import Sampler, parse

GATEWAY = """
# TYPE par_gateway_agent_requests_total counter
par_gateway_agent_requests_total{agent="a",code="200",namespace="default"} {ok}
par_gateway_agent_requests_total{agent="a",code="502",namespace="default"} {bad}
# TYPE par_gateway_agent_request_seconds summary
par_gateway_agent_request_seconds_count{agent="a",namespace="default"} {count}
par_gateway_agent_request_seconds_sum{agent="a",namespace="default"} {total}
# TYPE par_eventing_events_delivered_total counter
par_eventing_events_delivered_total{namespace="default",trigger="greetings"} {delivered}
# TYPE par_eventing_events_dead_lettered_total counter
par_eventing_events_dead_lettered_total{namespace="default",trigger="greetings"} 1.0
"""


def _text(ok: int, bad: int, total: float, delivered: int) -> str:
    return (GATEWAY.replace("{ok}", str(ok)).replace("{bad}", str(bad)).replace("{count}", str(ok + bad))
            .replace("{total}", str(total)).replace("{delivered}", str(delivered)))


def test_rate_latency_and_errors_between_scrapes() -> None:
    sampler = Sampler(["http://unused/metrics"])
    sampler.samples.append(parse(_text(10, 0, 1.0, 3), at=100.0))
    sampler.samples.append(parse(_text(30, 10, 3.0, 7), at=110.0))  # 30 more in 10 s, 2 s more in all
    [point] = sampler.series("default", "a")
    assert point["rate"] == pytest.approx(3.0)
    assert point["latency_ms"] == pytest.approx(2.0 / 30 * 1000, rel=1e-3)
    assert point["errors"] == pytest.approx(1.0)
    assert sampler.trigger_counts("default", "greetings") == {"delivered": 7.0, "dead_lettered": 1.0}
    idle = {"t": 110.0, "rate": 0.0, "latency_ms": None, "errors": 0.0}
    assert sampler.series("default", "other") == [idle]


def test_a_restarted_gateway_starts_its_counters_again() -> None:
    sampler = Sampler(["http://unused/metrics"])
    sampler.samples.append(parse(_text(100, 0, 10.0, 0), at=100.0))
    sampler.samples.append(parse(_text(5, 0, 0.5, 0), at=105.0))
    [point] = sampler.series("default", "a")
    assert point["rate"] == pytest.approx(1.0) and point["latency_ms"] == pytest.approx(100.0)


def test_nothing_scraped_yet() -> None:
    sampler = Sampler([])
    assert not sampler.enabled and sampler.trigger_counts("default", "t") is None
