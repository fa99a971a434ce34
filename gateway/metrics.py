"""Prometheus metrics of the gateway (module-level: one set per process, whatever the mode).

The two per-request series (decisions by outcome/reason, decision latency) are kept by a small
collector of plain counters instead of prometheus-client's `Counter`/`Histogram` objects: those
take a lock and search buckets on every call, which cost a measurable share of a ~20 µs
decision. The gateway serves requests on one event-loop thread, so plain increments are safe;
the exposition format is prometheus-client's own.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric, SummaryMetricFamily

DECISION_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

PROXY_SECONDS = Histogram(
    "par_gateway_proxy_seconds",
    "Proxied exchanges from decision to the last response byte, by response status class.",
    ["status"],
)
_proxy_children: dict[int, Histogram] = {}


def observe_proxied(status: int, seconds: float) -> None:
    """Observe one proxied exchange (labelled children cached: this runs per request)."""
    group = status // 100
    child = _proxy_children.get(group)
    if child is None:
        child = _proxy_children[group] = PROXY_SECONDS.labels(f"{group}xx")
    child.observe(seconds)


class DecisionMetrics:
    """`par_gateway_decisions_total{outcome,reason}` and `par_gateway_decision_seconds`."""

    def __init__(self) -> None:
        self.counts: dict[tuple[bool, str], int] = {}
        self.bucket_counts = [0] * (len(DECISION_BUCKETS) + 1)
        self.latency_sum = 0.0

    def record(self, allowed: bool, reason: str, seconds: float) -> None:
        key = (allowed, reason)
        self.counts[key] = self.counts.get(key, 0) + 1
        self.bucket_counts[bisect_left(DECISION_BUCKETS, seconds)] += 1
        self.latency_sum += seconds

    def collect(self) -> Iterator[Metric]:
        decisions = CounterMetricFamily(
            "par_gateway_decisions",
            "Access decisions by outcome (allow/deny) and reason.",
            labels=["outcome", "reason"],
        )
        for (allowed, reason), count in sorted(self.counts.items()):
            decisions.add_metric(["allow" if allowed else "deny", reason], count)
        yield decisions
        cumulative, buckets = 0, []
        for bound, count in zip((*DECISION_BUCKETS, float("inf")), self.bucket_counts, strict=True):
            cumulative += count
            buckets.append((str(bound) if bound != float("inf") else "+Inf", cumulative))
        yield HistogramMetricFamily(
            "par_gateway_decision_seconds",
            "Time to reach an access decision.",
            buckets=buckets,
            sum_value=self.latency_sum,
        )


class AgentRequests:
    """`par_gateway_agent_requests_total{namespace,agent,code}` and the proxied time per agent
    as a summary (count and sum): what the console's rate and latency chart is drawn from."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, int], int] = {}
        self.seconds: dict[tuple[str, str], list[float]] = {}  # [count, sum]

    def record(self, namespace: str, agent: str, status: int, seconds: float) -> None:
        key = (namespace, agent, status)
        self.counts[key] = self.counts.get(key, 0) + 1
        total = self.seconds.setdefault((namespace, agent), [0.0, 0.0])
        total[0] += 1.0
        total[1] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "par_gateway_agent_requests", "Proxied requests by agent and status.",
            labels=["namespace", "agent", "code"],
        )
        for (namespace, agent, status), count in sorted(self.counts.items()):
            requests.add_metric([namespace, agent, str(status)], count)
        yield requests
        latency = SummaryMetricFamily(
            "par_gateway_agent_request_seconds", "Proxied time per agent, decision to last byte.",
            labels=["namespace", "agent"],
        )
        for (namespace, agent), (calls, total) in sorted(self.seconds.items()):
            latency.add_metric([namespace, agent], count_value=int(calls), sum_value=total)
        yield latency


DECISIONS = DecisionMetrics()
REGISTRY.register(DECISIONS)
AGENT_REQUESTS = AgentRequests()
REGISTRY.register(AGENT_REQUESTS)


def render() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
