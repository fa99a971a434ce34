"""The instances of one revision, scaled the way Knative's autoscaler does it.

- desired scale = ceil((in flight + queued) / target), bounded by min-scale and max-scale, and
  at least 1 while the revision was used within the stable window (a request held by the
  activator counts as queued, so a request to a revision at zero starts one instance);
- `containerConcurrency` > 0 caps requests per instance (`pick` offers no full instance);
- an idle instance is stopped once idle longer than the stable window and not needed;
- an instance that exits on its own is replaced (if still needed) after an exponential backoff;
  a start that fails is recorded (`failure_gen`, `last_error`) for the requests that waited.

Holding requests while this happens is the activator's job (`activator.py`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable

import httpx

from .instance import Instance, StartFailed
from .metrics import START_SECONDS, STARTS, STOPS
from .settings import ServingSettings
from .types import InstanceState, InstanceStatus, RevisionSpec, RevisionStatus

log = logging.getLogger("par.serving.revision")

Launch = Callable[[RevisionSpec], Awaitable[Instance]]


class Revision:
    def __init__(
        self,
        spec: RevisionSpec,
        launch: Launch,
        client: httpx.AsyncClient,
        settings: ServingSettings,
        on_change: Callable[[], None],
        confinement: str = "unconfined",
    ) -> None:
        self.spec = spec
        self.confinement = confinement
        self._launch = launch
        self._client = client
        self._settings = settings
        self._on_change = on_change
        self.instances: list[Instance | _Starting] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.routed = True  # False when traffic sends it 0 %: min-scale no longer applies
        self.waiting = 0  # requests the activator holds for this revision
        self.last_request = float("-inf")
        self.failures = 0  # consecutive failed starts or crashes
        self.failure_gen = 0
        self.last_error: str | None = None
        self.healthy = True  # False from a failure until an instance is ready again
        self.restarts = 0
        self._retry_at = 0.0
        self._retry_timer: asyncio.TimerHandle | None = None
        self.changed = asyncio.Event()  # replaced (after being set) on every change
        self.closed = False

    # -- what the activator uses --------------------------------------------------------------

    def pick(self) -> Instance | None:
        """The least busy ready instance with a free slot under `containerConcurrency`."""
        limit = self.spec.container_concurrency
        ready = [
            i for i in self.instances
            if isinstance(i, Instance)
            and i.state is InstanceState.READY
            and (limit <= 0 or i.in_flight < limit)
        ]
        return min(ready, key=lambda i: i.in_flight) if ready else None

    def release(self, instance: Instance) -> None:
        """One request on `instance` ended."""
        instance.in_flight -= 1
        instance.last_used = self.last_request = time.monotonic()
        self._notify()

    # -- scaling ----------------------------------------------------------------------------

    def live(self) -> list[Instance | _Starting]:
        return [i for i in self.instances if i.state in (InstanceState.STARTING, InstanceState.READY)]

    def in_flight(self) -> int:
        return sum(i.in_flight for i in self.instances)

    def desired(self, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        demand = self.in_flight() + self.waiting
        want = math.ceil(demand / max(self.spec.target, 1))
        if now - self.last_request < self._settings.scale_to_zero_after:
            want = max(want, 1)
        if self.routed:
            want = max(want, self.spec.min_scale)
        cap = self.spec.max_scale or self._settings.max_instances_per_revision
        return min(want, cap)

    def reconcile(self) -> None:
        """Start instances up to the desired scale (respecting the restart backoff)."""
        if self.closed:
            return
        missing = self.desired() - len(self.live())
        if missing <= 0:
            return
        delay = self._retry_at - time.monotonic()
        if delay > 0:
            if self._retry_timer is None:
                self._retry_timer = asyncio.get_running_loop().call_later(delay, self._retry_due)
            return
        for _ in range(missing):
            placeholder = _Starting()
            self.instances.append(placeholder)  # counts as live at once, so no double start
            task = asyncio.get_running_loop().create_task(self._start_one(placeholder))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _retry_due(self) -> None:
        self._retry_timer = None
        self.reconcile()

    async def _start_one(self, placeholder: _Starting) -> None:
        try:
            instance = await self._launch(self.spec)
        except Exception as exc:  # the reason goes to the requests waiting for this start
            self.instances.remove(placeholder)
            self._failed(f"could not launch: {exc}", crashed=False)
            return
        self.instances[self.instances.index(placeholder)] = instance
        instance.exited.add_done_callback(lambda _: self._exited(instance))
        self._on_change()
        try:
            await instance.wait_ready(self._client, self._settings.instance_start_timeout)
        except StartFailed as exc:
            await instance.stop(self._settings.instance_stop_grace)
            self._forget(instance)
            self._failed(str(exc), crashed=False)
            return
        if self.closed:
            await instance.stop(self._settings.instance_stop_grace)
            return
        self.healthy = True
        started = (instance.ready_at or instance.started_at) - instance.started_at
        STARTS.labels("ready").inc()
        START_SECONDS.observe(started)
        start_ms = round(started * 1000, 1)
        log.info("instance ready", extra={"revision": self.spec.label, "pid": instance.pid,
                                          "port": instance.port, "start_ms": start_ms})
        self._notify()

    def _failed(self, reason: str, *, crashed: bool) -> None:
        """Record a failure; the first crash of a healthy instance is replaced at once, anything
        else waits an exponential backoff (Kubernetes' CrashLoopBackOff, shortened)."""
        self.failures += 1
        self.failure_gen += 1
        self.last_error = reason
        self.healthy = False
        if not crashed:
            STARTS.labels("failed").inc()
        steps = self.failures - 2 if crashed else self.failures - 1
        backoff = 0.0 if steps < 0 else min(
            self._settings.restart_backoff_initial * 2**steps, self._settings.restart_backoff_max
        )
        self._retry_at = time.monotonic() + backoff
        log.warning("instance failed", extra={"revision": self.spec.label, "reason": reason,
                                              "failures": self.failures, "backoff_s": backoff})
        self._notify()
        self.reconcile()

    def _exited(self, instance: Instance) -> None:
        """Exit watcher: an instance that was not being stopped has crashed."""
        if instance.state in (InstanceState.STOPPING, InstanceState.EXITED) or instance not in self.instances:
            instance.state = InstanceState.EXITED
            return
        was_ready = instance.state is InstanceState.READY
        instance.state = InstanceState.EXITED
        instance.kill_now()  # anything left in its process group
        self._forget(instance)
        if not was_ready:
            return  # wait_ready reports the failed start
        self.restarts += 1
        STOPS.labels("oom" if instance.oom_killed else "crash").inc()
        if instance.ready_at is not None and time.monotonic() - instance.ready_at > 30:
            self.failures = 0  # a long-lived instance crashing is not a crash loop
        if instance.oom_killed:  # Kubernetes' reason for the same event
            limit = instance.confined.limits.memory_bytes if instance.confined else None
            over = f" of {limit // 2**20}Mi" if limit else ""
            reason = f"OOMKilled: instance pid {instance.pid} went over its memory limit{over}"
        else:
            reason = f"instance pid {instance.pid} exited with code {instance.returncode}"
        self._failed(reason, crashed=True)

    def _forget(self, instance: Instance) -> None:
        if instance in self.instances:
            self.instances.remove(instance)
        self._notify()

    async def scale_down_idle(self, now: float) -> None:
        """Stop instances idle longer than the stable window that the desired scale does not need."""
        window = self._settings.scale_to_zero_after
        surplus = len(self.live()) - self.desired(now)
        idle = sorted(
            (i for i in self.instances
             if isinstance(i, Instance) and i.state is InstanceState.READY
             and i.in_flight == 0 and now - i.last_used >= window),
            key=lambda i: i.last_used,
        )
        for instance in idle[: max(surplus, 0)]:
            log.info("scale down", extra={"revision": self.spec.label, "pid": instance.pid})
            STOPS.labels("idle").inc()
            instance.state = InstanceState.STOPPING
            self._forget(instance)
            await instance.stop(self._settings.instance_stop_grace)
        self.reconcile()

    def _notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()
        self._on_change()

    async def close(self) -> None:
        """Stop every instance (undeploy or shutdown); waiting requests get 502."""
        self.closed = True
        if self._retry_timer is not None:
            self._retry_timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        instances = [i for i in self.instances if isinstance(i, Instance)]
        for instance in instances:
            instance.state = InstanceState.STOPPING
        self.instances.clear()
        self._notify()
        await asyncio.gather(*(i.stop(self._settings.instance_stop_grace) for i in instances))

    def kill_all_now(self) -> None:
        for instance in self.instances:
            if isinstance(instance, Instance):
                instance.kill_now()

    def status(self) -> RevisionStatus:
        now = time.monotonic()
        return RevisionStatus(
            version=self.spec.version,
            desired=self.desired(now),
            instances=tuple(
                InstanceStatus(i.pid, i.port, i.state, i.in_flight, round(now - i.last_used, 1), i.id)
                for i in self.instances if isinstance(i, Instance)
            ),
            starting=sum(1 for i in self.instances if isinstance(i, _Starting)),
            queued=self.waiting,
            restarts=self.restarts,
            healthy=self.healthy,
            last_error=self.last_error,
            confinement=self.confinement,
        )


class _Starting:
    """Stands for an instance whose process is being spawned."""

    state = InstanceState.STARTING
    in_flight = 0
