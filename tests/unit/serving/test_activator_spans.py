"""The activator's spans (with an OTLP exporter): the hold, and the cold start when no instance was
ready, in the request's trace. A stand-in revision starts its instance when first reconciled."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from runtime import telemetry, tracecontext
from serving.activator import Activator
from serving.types import InstanceState

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


class Revision:
    def __init__(self) -> None:
        self.spec = SimpleNamespace(label="default/echo@0.1.0")
        self.instances: list = []
        self.failure_gen, self.waiting, self.last_request, self.closed = 0, 0, 0.0, False
        self.changed = asyncio.Event()

    def pick(self):
        ready = [i for i in self.instances if i.state is InstanceState.READY]
        return ready[0] if ready else None

    def live(self):
        return self.instances

    def reconcile(self) -> None:
        async def start() -> None:
            await asyncio.sleep(0.05)
            self.instances.append(SimpleNamespace(state=InstanceState.READY, url="http://x", in_flight=0))
            self.changed.set()

        if not self.instances:
            asyncio.get_running_loop().create_task(start())

    def release(self, instance) -> None:
        instance.in_flight -= 1


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.use_provider(provider)
    yield exporter
    telemetry.use_provider(None)


async def test_a_cold_start_then_a_warm_hold(spans: InMemorySpanExporter) -> None:
    revision = Revision()
    activator = Activator(lambda namespace, agent, tag: revision, queue_timeout=5)  # type: ignore[arg-type,return-value]
    token = tracecontext.set_current(tracecontext.TraceContext(TRACE_ID, "00f067aa0ba902b7"))
    try:
        for _ in range(2):
            async with activator.acquire("default", "echo") as url:
                assert url == "http://x"
    finally:
        tracecontext.reset_current(token)
    finished = spans.get_finished_spans()
    holds = [s for s in finished if s.name == "activator hold"]
    (cold,) = [s for s in finished if s.name == "cold start"]
    assert [h.attributes["par.cold_start"] for h in holds] == [True, False]
    assert all(format(s.context.trace_id, "032x") == TRACE_ID for s in finished)
    assert format(holds[0].parent.span_id, "016x") == "00f067aa0ba902b7"
    assert cold.parent.span_id == holds[0].context.span_id
    assert cold.end_time - cold.start_time >= 40_000_000  # the 50 ms start, in ns
    assert holds[0].attributes["par.agent"] == "default/echo"
