"""Trigger dispatcher: one Kafka consumer group per Trigger, filter, deliver, dead-letter, reply, commit.

At least once: an offset is committed only when every record before it in its partition was
delivered, dead-lettered or dropped (filtered out counts as done). `ordered` delivers one record at
a time per partition; `unordered` delivers up to `max_in_flight` records at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import aiohttp
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import InvalidSessionTimeoutError, KafkaError
from aiokafka.structs import ConsumerRecord

from eventing import metrics, wire
from eventing.delivery import Outcome, deliver
from eventing.kafka import Kafka, kafka_reason, session_timeout_ms
from eventing.objects import Broker, Trigger, topic_name
from eventing.offsets import OffsetTracker
from eventing.settings import EventingSettings

log = logging.getLogger("eventing.dispatcher")


class _Revocations(ConsumerRebalanceListener):
    def __init__(self, owner: TriggerConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.owner.drain_and_commit()
        self.owner.tracker.forget(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("partitions assigned", extra={"group": self.owner.trigger.group, "count": len(assigned)})
        if assigned:
            self.owner.assigned.set()


class TriggerConsumer:
    """Consumes the Broker's topic in the Trigger's consumer group and delivers to its subscriber."""

    def __init__(
        self,
        trigger: Trigger,
        broker: Callable[[], Broker | None],
        kafka: Kafka,
        session: aiohttp.ClientSession,
        settings: EventingSettings,
    ) -> None:
        self.trigger = trigger  # replaced in place when the Trigger changes (same broker)
        self.broker = broker
        self.kafka = kafka
        self.session = session
        self.settings = settings
        self.tracker: OffsetTracker[TopicPartition] = OffsetTracker()
        self.ready = asyncio.Event()
        self.failure: str | None = None  # why the consumer could not start: the broker's reason
        self.settled = asyncio.Event()  # ready, or failed
        self.assigned = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._last: dict[TopicPartition, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(settings.max_in_flight)
        self._consumer: AIOKafkaConsumer | None = None
        self._runner: asyncio.Task[None] | None = None
        self._started = 0.0
        self._session_ms = 0

    @property
    def topic(self) -> str:
        return topic_name(self.trigger.namespace, self.trigger.broker)

    def start(self) -> None:
        self._runner = asyncio.create_task(self._run(), name=f"trigger {self.trigger.group}")

    async def stop(self) -> None:
        """Stop fetching, let deliveries in flight finish (bounded), commit, leave the group."""
        if self._runner:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner

    async def _run(self) -> None:
        session = self._session_ms = session_timeout_ms(self.settings, self.kafka.bootstrap)
        self._started = time.monotonic()
        consumer = AIOKafkaConsumer(
            **self.kafka.options,
            group_id=self.trigger.group,
            enable_auto_commit=False,
            auto_offset_reset=self.trigger.initial_offset,
            session_timeout_ms=session,
            heartbeat_interval_ms=max(100, session // 6),
            max_poll_records=self.settings.max_in_flight * 4,
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
        )
        self._consumer = consumer
        consumer.subscribe([self.topic], listener=_Revocations(self))
        try:
            await consumer.start()
            await self._wait_assigned(consumer)
        except KafkaError as exc:
            self._fail(exc)
            await consumer.stop()
            return
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=int(self.settings.commit_interval * 1000))
                for tp, records in batch.items():
                    for record in records:
                        await self._slots.acquire()
                        self._spawn(tp, record)
                await self._commit()
        except asyncio.CancelledError:
            # A stop must not wait for an unreachable Kafka: aiokafka retries a commit until the
            # coordinator answers. What is not committed is delivered again (at least once).
            if self._tasks:
                await asyncio.wait(set(self._tasks), timeout=10.0)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3.0):
                    await self._commit()
            raise
        finally:
            await consumer.stop()

    async def _wait_assigned(self, consumer: AIOKafkaConsumer) -> None:
        """Join the group, then anchor offsets so `latest` means "from the moment we were ready"."""
        await self.assigned.wait()
        assigned = consumer.assignment()
        anchors = {}
        for tp in assigned:
            if await consumer.committed(tp) is None:
                anchors[tp] = await consumer.position(tp)
        if anchors:
            await consumer.commit(anchors)
        self.ready.set()
        self.settled.set()
        log.info(
            "trigger ready",
            extra={"group": self.trigger.group, "topic": self.topic, "partitions": len(assigned),
                   "join_s": round(time.monotonic() - self._started, 2)},
        )

    def _fail(self, exc: KafkaError) -> None:
        """The group could not be joined (e.g. a session timeout the broker refuses): fail readiness now."""
        self.failure = kafka_reason(exc)
        if isinstance(exc, InvalidSessionTimeoutError):
            self.failure += f" (PAR_EVENTING_SESSION_TIMEOUT_MS={self._session_ms})"
        log.error("trigger consumer could not start",
                  extra={"group": self.trigger.group, "error": self.failure})
        self.settled.set()

    def _spawn(self, tp: TopicPartition, record: ConsumerRecord) -> None:
        self.tracker.start(tp, record.offset)
        before = self._last.get(tp) if self.trigger.ordered else None
        task = asyncio.create_task(self._process(tp, record, before))
        self._tasks.add(task)
        self._last[tp] = task
        task.add_done_callback(self._tasks.discard)

    async def _process(
        self, tp: TopicPartition, record: ConsumerRecord, before: asyncio.Task[None] | None
    ) -> None:
        try:
            if before is not None:
                await asyncio.wait([before])
            await self._handle(record)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("record failed", extra={"group": self.trigger.group, "offset": record.offset})
        finally:
            self._slots.release()
        self.tracker.done(tp, record.offset)

    async def _commit(self) -> None:
        offsets = self.tracker.committable()
        if not offsets or self._consumer is None:
            return
        try:
            await self._consumer.commit(offsets)
            self.tracker.mark_committed(offsets)
        except Exception as exc:
            log.warning("offset commit failed", extra={"group": self.trigger.group, "error": repr(exc)})

    async def drain_and_commit(self, wait_s: float = 30.0) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=wait_s)
        await self._commit()

    async def _handle(self, record: ConsumerRecord) -> None:
        trigger = self.trigger
        labels = (trigger.namespace, trigger.name)
        try:
            event = wire.from_kafka(record.headers, record.key, record.value)
        except Exception as exc:
            log.error("skipping a record that is not a CloudEvent",
                      extra={"group": trigger.group, "offset": record.offset, "error": str(exc)})
            return
        if not trigger.matcher(wire.attribute_strings(event)):
            return
        spec = trigger.delivery_spec(self.broker())
        url = trigger.subscriber.url(self.settings.service_url_template, trigger.namespace)
        outcome = await deliver(
            self.session, url, event, spec, self.settings.delivery_timeout,
            on_retry=metrics.RETRIED.labels(*labels).inc,
        )
        if outcome.ok:
            metrics.DELIVERED.labels(*labels).inc()
            metrics.LATENCY.labels(*labels).observe(max(0.0, time.time() - record.timestamp / 1000))
            await self._reply(outcome)
            return
        fields = {"group": trigger.group, "event_id": event.get_id(), "url": url, "status": outcome.status,
                  "error": outcome.error, "attempts": outcome.attempts}
        if spec.dead_letter_sink is None:
            metrics.DROPPED.labels(*labels).inc()
            log.error("delivery failed, no dead-letter sink: event dropped", extra=fields)
            return
        dls_url = spec.dead_letter_sink.url(self.settings.service_url_template, trigger.namespace)
        dead = wire.with_extensions(event, outcome.error_extensions())
        dls = await deliver(self.session, dls_url, dead, spec, self.settings.delivery_timeout)
        if dls.ok:
            metrics.DEAD_LETTERED.labels(*labels).inc()
            log.warning("delivery failed: event dead-lettered", extra={**fields, "dead_letter_sink": dls_url})
        else:
            metrics.DROPPED.labels(*labels).inc()
            log.error("delivery and dead-letter sink failed: event dropped",
                      extra={**fields, "dead_letter_sink": dls_url, "dls_status": dls.status})

    async def _reply(self, outcome: Outcome) -> None:
        """A CloudEvent in the subscriber's response goes back into the same broker."""
        if not wire.has_event(outcome.headers):
            return
        trigger = self.trigger
        try:
            reply = wire.from_http(outcome.headers, outcome.body)
        except wire.InvalidEvent as exc:
            log.warning("subscriber replied with an invalid CloudEvent",
                        extra={"group": trigger.group, "error": str(exc)})
            return
        await self.kafka.produce(self.topic, wire.to_kafka(reply))
        metrics.REPLIES.labels(trigger.namespace, trigger.name).inc()
