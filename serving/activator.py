"""The activator role, as Knative's activator plays it: hold a request, start, release.

Every request to an agent on one machine (through the gateway, or a delivery through the local
gateway) asks `Activator.acquire(namespace, agent)` for an upstream and holds it for the whole
exchange, response body included:
- the revision is chosen by the service's traffic split;
- with no ready instance with a free slot, the request is held (counted as queued, which makes
  the revision's autoscaler start one); requests arriving meanwhile share that start;
- a start that fails is reported to the requests that waited for it (502 at the gateway); the
  next request waits out the restart backoff as Knative's activator would;
- a request held longer than `request_queue_timeout` is refused the same way;
- on exit, the slot is released and the instance's idle clock restarts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from gateway.resolver import AgentUnavailable
from runtime import telemetry, tracecontext

from .instance import Instance, InstanceState
from .revision import Revision

Route = Callable[[str, str, str | None], Revision]  # (namespace, agent, tag) -> one request's revision


class Activator:
    """`gateway.resolver.Resolver` over the controller's revisions."""

    def __init__(self, route: Route, queue_timeout: float) -> None:
        self._route = route
        self._queue_timeout = queue_timeout

    @asynccontextmanager
    async def acquire(self, namespace: str, agent: str, tag: str | None = None) -> AsyncIterator[str]:
        """A base URL of a ready instance, held for one exchange (`UnknownAgent` if none)."""
        revision = self._route(namespace, agent, tag)
        tracer = telemetry.tracer("serving")
        if tracer is None:
            instance = await self._hold(revision)
        else:
            instance = await self._hold_traced(tracer, revision, f"{namespace}/{agent}")
        try:
            yield instance.url
        finally:
            revision.release(instance)

    async def _hold_traced(self, tracer: Any, revision: Revision, agent: str) -> Instance:
        """`_hold` in an 'activator hold' span (child of the request's trace context); when no
        instance was ready on arrival, the wait is also a 'cold start' span (scale from zero)."""
        parent = tracecontext.current()
        attributes = {"par.agent": agent, "par.revision": revision.spec.label}
        span = telemetry.start(tracer, "activator hold", parent, "INTERNAL", attributes)
        held = revision.pick() is None
        cold = held and not any(i.state is InstanceState.READY for i in revision.instances)
        span.set_attributes({"par.activator.held": held, "par.cold_start": cold})
        start = telemetry.start(tracer, "cold start", telemetry.context_of(span, parent), "INTERNAL",
                                attributes) if cold else None
        try:
            return await self._hold(revision)
        except AgentUnavailable as exc:
            from opentelemetry.trace import StatusCode

            for failed in (start, span):
                if failed is not None:
                    failed.set_status(StatusCode.ERROR, str(exc))
                    failed.set_attribute("error.type", "AgentUnavailable")
            raise
        finally:
            if start is not None:
                start.end()
            span.end()

    async def _hold(self, revision: Revision) -> Instance:
        seen_failures = revision.failure_gen
        revision.waiting += 1
        revision.last_request = time.monotonic()
        try:
            async with asyncio.timeout(self._queue_timeout):
                while True:
                    if revision.closed:
                        raise AgentUnavailable(f"{revision.spec.label} was undeployed")
                    instance = revision.pick()
                    if instance is not None:
                        instance.in_flight += 1
                        return instance
                    if not revision.live() and revision.failure_gen != seen_failures:
                        # The start this request waited for failed; a later request tries again.
                        raise AgentUnavailable(
                            f"{revision.spec.label} failed to start: {revision.last_error}"
                        )
                    changed = revision.changed
                    revision.reconcile()
                    await changed.wait()
        except TimeoutError:
            raise AgentUnavailable(
                f"{revision.spec.label}: no capacity within {self._queue_timeout:.0f}s"
            ) from None
        finally:
            revision.waiting -= 1
