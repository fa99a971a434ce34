"""Prometheus metrics of the local Knative Serving (instances, starts, local gateway requests).
The names keep their `par_local_` prefix: dashboards of the first version read them."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

STARTS = Counter(
    "par_local_instance_starts_total", "Instance starts by outcome (ready, failed).", ["outcome"]
)
START_SECONDS = Histogram(
    "par_local_instance_start_seconds", "From spawning a runtime process to its first 200 on /readyz.",
    buckets=(0.05, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0),
)
STOPS = Counter("par_local_instance_stops_total", "Instances stopped, by reason (idle, crash, oom).",
                ["reason"])
ACTIVATIONS = Counter(
    "par_local_activator_requests_total", "Requests through the local gateway (event deliveries), by status.",
    ["status"],
)
