"""The console's numbers, read from the platform's own Prometheus `/metrics` (the gateway's, and
the broker's when it is another process): per agent the proxied requests and their time, per
trigger the delivered, retried and dead-lettered events. Scraped every few seconds while the
registry runs; the last few minutes are kept, so a chart has history the moment it opens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

log = logging.getLogger("registry.console")

AGENT_TIME = "par_gateway_agent_request_seconds"
AGENT_REQUESTS = "par_gateway_agent_requests"
TRIGGER_COUNTERS = {
    "par_eventing_events_delivered": "delivered",
    "par_eventing_delivery_retries": "retried",
    "par_eventing_events_dead_lettered": "dead_lettered",
    "par_eventing_events_dropped": "dropped",
}


@dataclass
class Sample:
    at: float  # wall clock, seconds
    agents: dict[tuple[str, str], list[float]] = field(default_factory=dict)  # count, seconds, 5xx
    triggers: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)


def parse(text: str, at: float) -> Sample:
    """One scrape's totals (a text format the prometheus client can read)."""
    sample = Sample(at)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = s.labels
            if family.name == AGENT_TIME and s.name.endswith(("_count", "_sum")):
                totals = sample.agents.setdefault((labels["namespace"], labels["agent"]), [0.0, 0.0, 0.0])
                totals[0 if s.name.endswith("_count") else 1] += s.value
            elif family.name == AGENT_REQUESTS and labels.get("code", "").startswith("5"):
                totals = sample.agents.setdefault((labels["namespace"], labels["agent"]), [0.0, 0.0, 0.0])
                totals[2] += s.value
            elif family.name in TRIGGER_COUNTERS and s.name.endswith("_total"):
                counts = sample.triggers.setdefault((labels["namespace"], labels["trigger"]), {})
                name = TRIGGER_COUNTERS[family.name]
                counts[name] = counts.get(name, 0.0) + s.value
    return sample


class Sampler:
    def __init__(self, urls: list[str], interval: float = 5.0, keep: int = 72) -> None:
        self.urls, self.interval = urls, interval
        self.samples: deque[Sample] = deque(maxlen=keep)
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    @property
    def enabled(self) -> bool:
        return bool(self.urls)

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._run(), name="console-sampler")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=self.interval) as client:
            while True:
                await self.scrape(client)
                await asyncio.sleep(self.interval)

    async def scrape(self, client: httpx.AsyncClient) -> None:
        text = []
        try:
            for url in self.urls:
                response = await client.get(url)
                response.raise_for_status()
                text.append(response.text)
        except httpx.HTTPError as exc:
            if not self._failing:  # once per outage, not every few seconds
                log.warning("metrics unreachable", extra={"url": url, "error": str(exc)})
            self._failing = True
            return
        self._failing = False
        merged = parse("\n".join(text), time.time())
        self.samples.append(merged)

    def series(self, namespace: str, agent: str) -> list[dict[str, float | None]]:
        """Requests per second, mean latency (ms) and 5xx per second between successive scrapes."""
        points: list[dict[str, float | None]] = []
        previous: Sample | None = None
        for sample in self.samples:
            if previous is not None:
                before = previous.agents.get((namespace, agent), [0.0, 0.0, 0.0])
                now = sample.agents.get((namespace, agent), [0.0, 0.0, 0.0])
                span = max(sample.at - previous.at, 1e-6)
                count = now[0] - before[0]
                if count < 0:  # the gateway restarted: its counters began again
                    count, before = now[0], [0.0, 0.0, 0.0]
                points.append({
                    "t": round(sample.at, 3),
                    "rate": round(count / span, 3),
                    "latency_ms": round((now[1] - before[1]) / count * 1000, 2) if count else None,
                    "errors": round((now[2] - before[2]) / span, 3),
                })
            previous = sample
        return points

    def trigger_counts(self, namespace: str, trigger: str) -> dict[str, float] | None:
        """The trigger's totals at the last scrape, None when nothing was scraped yet."""
        if not self.samples:
            return None
        return self.samples[-1].triggers.get((namespace, trigger), {})
