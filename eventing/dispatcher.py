"""Trigger dispatcher: one fetch loop per Broker topic, fanned out to that Broker's Triggers.

Why not one consumer group per Trigger: each group member polls the broker on its own and joins
its group on start, so an idle platform's cost and its start-up time grew with the number of
Triggers (measured: 63 % of a core for 20 idle Triggers, a 2 s join each on the embedded broker).

Here a `TopicReader` fetches each Broker topic once and offers every record to each attached
`TriggerCursor`. A cursor keeps its own position per partition and commits its offsets to its
Knative-named group (`knative-trigger-{ns}-{name}`) as a simple consumer (eventing.offsets): no
join, no rebalance, nothing to do while idle. A cursor takes a record only when it is exactly at
that record's position and has room (at most `max_in_flight` deliveries); otherwise it falls
behind and reads on its own (`_catch_up`, a private consumer, only while behind) until it is back
at the reader's position. So a slow or failing subscriber never holds back another Trigger.

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
from dataclasses import dataclass

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalGenerationError, KafkaError, UnknownMemberIdError, for_code
from aiokafka.structs import ConsumerRecord
from cloudevents.core.base import BaseCloudEvent

from eventing import metrics, wire
from eventing.deadletters import ATTEMPTS_HEADER, TRIGGER_HEADER, DeadLetterStore, Failure, update_gauge
from eventing.delivery import Outcome, deliver
from eventing.embedded import is_embedded
from eventing.kafka import Kafka, kafka_reason
from eventing.objects import Broker, Trigger, topic_name
from eventing.offsets import GroupOffsets, OffsetTracker
from eventing.settings import EventingSettings
from runtime import telemetry

log = logging.getLogger("eventing.dispatcher")
# Tansu (the embedded broker) holds an empty fetch for its whole wait, so its reader fetches with
# short waits while records flow, and after this long without one only every `IDLE_POLL` seconds
# (or at once when this process produced to the topic): an idle topic costs ~2 fetches a second.
IDLE_AFTER, IDLE_POLL = 1.0, 0.5
CATCH_UP_LINGER = 30.0  # a cursor's private consumer stays this long after it caught up
STOP_WAIT = 10.0  # deliveries in flight at stop get this long to finish, then commit
TOPIC_WAIT = 30.0  # how long a new topic may take to show its partitions


async def holds_empty_fetches(kafka: Kafka) -> bool:
    """Whether the broker holds an empty fetch for its whole wait instead of answering when a record
    arrives: Tansu (the embedded broker, or one at KAFKA_BOOTSTRAP_SERVERS) does, Kafka does not."""
    if is_embedded(kafka.bootstrap):
        return True
    cluster = await kafka.admin.describe_cluster()
    return str(cluster.get("cluster_id", "")).startswith("tansu")


@dataclass(frozen=True)
class Item:
    """A fetched record, parsed once for every Trigger of the topic."""

    record: ConsumerRecord
    event: BaseCloudEvent | None  # None: not a CloudEvent (skipped by every Trigger)
    attributes: dict[str, str]


def parse(record: ConsumerRecord) -> Item:
    try:
        event = wire.from_kafka(record.headers, record.key, record.value)
    except Exception as exc:
        log.error("skipping a record that is not a CloudEvent",
                  extra={"topic": record.topic, "partition": record.partition, "offset": record.offset,
                         "error": str(exc)})
        return Item(record, None, {})
    return Item(record, event, wire.attribute_strings(event))


class Dispatcher:
    """The topic readers, the Triggers' cursors and their offset commits."""

    def __init__(
        self,
        settings: EventingSettings,
        kafka: Kafka,
        session: aiohttp.ClientSession,
        dead_letters: DeadLetterStore | None = None,
    ) -> None:
        self.settings = settings
        self.dead_letters = dead_letters  # for Triggers without a deadLetterSink
        self.kafka = kafka
        self.session = session
        self.offsets = GroupOffsets(kafka.options)
        # asks for topic offsets only: it is assigned nothing, so it never fetches
        self.lookup = AIOKafkaConsumer(**kafka.options, enable_auto_commit=False)
        self.readers: dict[str, TopicReader] = {}
        self.fetch_wait_ms = 500  # set for the broker in `start`
        self.idle_pause = False
        self._dirty: set[TriggerCursor] = set()
        self._committer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Pick the fetch wait for the broker (the setting wins): Kafka answers a fetch as soon as a
        record arrives, so a long wait costs no latency there (500 ms); Tansu holds it (25 ms, and
        an idle reader pauses)."""
        self.idle_pause = await holds_empty_fetches(self.kafka)
        self.fetch_wait_ms = int(self.settings.fetch_max_wait_ms) or (25 if self.idle_pause else 500)
        await self.offsets.start()
        await self.lookup.start()
        self._committer = asyncio.create_task(self._commit_loop(), name="trigger offset commits")

    async def stop(self) -> None:
        for reader in list(self.readers.values()):
            await reader.stop()
        self.readers.clear()
        if self._committer:
            self._committer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._committer
        await self.offsets.close()
        await self.lookup.stop()

    def attach(self, trigger: Trigger, broker: Callable[[], Broker | None]) -> TriggerCursor:
        topic = topic_name(trigger.namespace, trigger.broker)
        reader = self.readers.get(topic)
        if reader is None:
            reader = self.readers[topic] = TopicReader(self, topic)
        cursor = TriggerCursor(self, reader, trigger, broker)
        reader.attach(cursor)
        return cursor

    async def detach(self, cursor: TriggerCursor) -> None:
        reader = cursor.reader
        await reader.detach(cursor)
        if not reader.cursors and self.readers.get(reader.topic) is reader:
            del self.readers[reader.topic]
            await reader.stop()

    def produced(self, topic: str) -> None:
        """This process stored a record on `topic`: an idle reader fetches now."""
        reader = self.readers.get(topic)
        if reader is not None:
            reader.wake.set()

    async def reply(self, trigger: Trigger, outcome: Outcome, event: BaseCloudEvent | None = None) -> None:
        """A CloudEvent in the subscriber's response goes back into the Trigger's broker, in the
        trace of the delivery: its own `traceparent`, else the response's, else the event's."""
        if not wire.has_event(outcome.headers):
            return
        try:
            reply = wire.from_http(outcome.headers, outcome.body)
        except wire.InvalidEvent as exc:
            log.warning("subscriber replied with an invalid CloudEvent",
                        extra={"group": trigger.group, "error": str(exc)})
            return
        reply = wire.traced(reply, outcome.headers)
        if event is not None and reply.get_extension("traceparent") is None:
            reply = wire.traced(reply, {k: str(v) for k in ("traceparent", "tracestate")
                                        if (v := event.get_extension(k)) is not None})
        topic = topic_name(trigger.namespace, trigger.broker)
        await self.kafka.produce(topic, wire.to_kafka(reply))
        self.produced(topic)
        metrics.REPLIES.labels(trigger.namespace, trigger.name).inc()

    def dirty(self, cursor: TriggerCursor) -> None:
        self._dirty.add(cursor)

    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.commit_interval)
            cursors, self._dirty = self._dirty, set()
            if cursors:
                await asyncio.gather(*(cursor.commit() for cursor in cursors))


class TopicReader:
    """Fetches one topic (every partition, no consumer group) and offers each record to its cursors."""

    def __init__(self, dispatcher: Dispatcher, topic: str) -> None:
        self.dispatcher = dispatcher
        self.topic = topic
        self.cursors: set[TriggerCursor] = set()
        self.partitions: list[TopicPartition] = []
        self.position: dict[int, int] = {}  # next offset the reader offers, per partition
        self.consumer: AIOKafkaConsumer | None = None
        self.wake = asyncio.Event()
        self._started: asyncio.Task[None] | None = None
        self._runner: asyncio.Task[None] | None = None

    def attach(self, cursor: TriggerCursor) -> None:
        self.cursors.add(cursor)
        failed = self._started is not None and self._started.done() and (
            self._started.cancelled() or self._started.exception() is not None)
        if self._started is None or failed:  # a start that failed is tried again by the next Trigger
            self._started = asyncio.create_task(self._start(), name=f"reader {self.topic}")
        cursor.start(self._started)

    async def detach(self, cursor: TriggerCursor) -> None:
        self.cursors.discard(cursor)
        await cursor.stop()

    async def _start(self) -> None:
        """Connect and learn the partitions; the first cursor's positions say where reading begins."""
        dispatcher = self.dispatcher
        deadline = time.monotonic() + TOPIC_WAIT
        # a topic just created is not in every broker's metadata yet (Kafka: LEADER_NOT_AVAILABLE)
        while True:
            (described,) = await dispatcher.kafka.admin.describe_topics([self.topic])
            self.partitions = [TopicPartition(self.topic, p["partition"]) for p in described["partitions"]]
            if self.partitions and not described.get("error_code"):
                break
            if time.monotonic() > deadline:
                code = described.get("error_code")
                raise for_code(code)() if code else KafkaError(f"topic {self.topic} has no partitions")
            await asyncio.sleep(0.1)
        self.consumer = AIOKafkaConsumer(
            **dispatcher.kafka.options, enable_auto_commit=False, auto_offset_reset="earliest",
            fetch_max_wait_ms=dispatcher.fetch_wait_ms,
            max_poll_records=dispatcher.settings.max_in_flight * 4,
        )
        await self.consumer.start()
        self.consumer.assign(self.partitions)

    def begin(self, positions: dict[int, int]) -> None:
        """Start reading at the first ready cursor's positions (later cursors catch up or wait)."""
        if self._runner is not None or self.consumer is None:
            return
        for tp in self.partitions:
            self.position[tp.partition] = positions[tp.partition]
            self.consumer.seek(tp, positions[tp.partition])
        self._runner = asyncio.create_task(self._run(), name=f"reader {self.topic}")

    async def end_offsets(self, earliest: bool) -> dict[int, int]:
        """Asked through the dispatcher's own client: Kafka answers a connection's requests in
        order, so on the reader's connection this would wait behind its long fetch (~500 ms)."""
        lookup = self.dispatcher.lookup
        ask = lookup.beginning_offsets if earliest else lookup.end_offsets
        return {tp.partition: offset for tp, offset in (await ask(self.partitions)).items()}

    async def _run(self) -> None:
        assert self.consumer is not None
        consumer, dispatcher = self.consumer, self.dispatcher
        last_record = time.monotonic()
        while True:
            if dispatcher.idle_pause and time.monotonic() - last_record > IDLE_AFTER:
                consumer.pause(*self.partitions)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), IDLE_POLL)
                self.wake.clear()
                consumer.resume(*self.partitions)
            try:
                batch = await consumer.getmany(timeout_ms=max(100, dispatcher.fetch_wait_ms * 2))
            except KafkaError as exc:
                log.warning("fetch failed", extra={"topic": self.topic, "error": kafka_reason(exc)})
                await asyncio.sleep(1.0)
                continue
            if batch:
                last_record = time.monotonic()
            for tp, records in batch.items():
                for record in records:
                    start = self.position[tp.partition]
                    self.position[tp.partition] = record.offset + 1
                    item = parse(record)
                    for cursor in self.cursors:
                        cursor.offer(start, item)

    async def stop(self) -> None:
        for cursor in list(self.cursors):
            await cursor.stop()
        self.cursors.clear()
        for task in (self._runner, self._started):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self.consumer is not None:
            await self.consumer.stop()


class TriggerCursor:
    """One Trigger's position in its Broker's topic, its deliveries in flight and its commits."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        reader: TopicReader,
        trigger: Trigger,
        broker: Callable[[], Broker | None],
    ) -> None:
        self.dispatcher = dispatcher
        self.reader = reader
        self.trigger = trigger  # replaced in place when the Trigger changes (same broker and order)
        self.broker = broker
        self.next: dict[int, int] = {}  # next offset this Trigger takes, per partition
        self.tracker: OffsetTracker[int] = OffsetTracker()
        self.ready = asyncio.Event()
        self.failure: str | None = None  # why the Trigger cannot start: the broker's reason
        self.settled = asyncio.Event()  # ready, or failed
        self.in_flight = 0
        self._room = asyncio.Event()
        self._room.set()
        self._behind = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._last: dict[int, asyncio.Task[None]] = {}
        self._starter: asyncio.Task[None] | None = None
        self._catching_up: asyncio.Task[None] | None = None

    @property
    def topic(self) -> str:
        return self.reader.topic

    @property
    def limit(self) -> int:
        return self.dispatcher.settings.max_in_flight

    # -- start and stop ------------------------------------------------------------------------------

    def start(self, reader_started: asyncio.Task[None]) -> None:
        self._starter = asyncio.create_task(self._start(reader_started), name=f"trigger {self.trigger.group}")

    async def _start(self, reader_started: asyncio.Task[None]) -> None:
        """The group's committed offsets, else the topic's end (`latest`) or beginning. They are
        committed now: a restart continues from the moment the Trigger was ready, and a group the
        broker will not let us commit to (another consumer is a member of it, no ACL) fails the
        Trigger at once with the broker's reason, not at its first event."""
        started = time.monotonic()
        group, reader = self.trigger.group, self.reader
        try:
            await asyncio.shield(reader_started)
            partitions = [tp.partition for tp in reader.partitions]
            committed = await self.dispatcher.offsets.committed(group, self.topic, partitions)
            missing = [p for p in partitions if p not in committed]
            if missing:
                anchors = await reader.end_offsets(self.trigger.initial_offset == "earliest")
                committed |= {p: anchors[p] for p in missing}
            await self.dispatcher.offsets.commit(group, self.topic, committed)
        except (KafkaError, OSError) as exc:
            self.failure = kafka_reason(exc)
            if isinstance(exc, UnknownMemberIdError | IllegalGenerationError):
                self.failure += " (the group has members: another consumer uses this Trigger's group)"
            log.error("trigger cannot start", extra={"group": group, "error": self.failure})
            self.settled.set()
            return
        self.next = dict(committed)
        self.tracker.mark_committed(committed)
        reader.begin(self.next)
        self.ready.set()
        self.settled.set()
        self.check_behind()
        log.info("trigger ready", extra={"group": group, "topic": self.topic, "partitions": len(partitions),
                                         "start_s": round(time.monotonic() - started, 3)})

    async def stop(self) -> None:
        """Stop taking records, let deliveries in flight finish (bounded), commit (bounded)."""
        for task in (self._starter, self._catching_up):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.next.clear()  # offers are refused from now on
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=STOP_WAIT)
        # What is not committed is delivered again (at least once); an unreachable Kafka must not
        # hold the stop: the commit is bounded.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3.0):
                await self.commit()

    # -- taking records ------------------------------------------------------------------------------

    def offer(self, start: int, item: Item) -> bool:
        """Take `item` if this cursor is at its position (`start` .. its offset: the source read every
        offset in between) and has room. Otherwise the cursor is behind or ahead; behind, it reads on
        its own until it is back at the reader's position."""
        record = item.record
        partition = record.partition
        at = self.next.get(partition)
        if at is None or at > record.offset:
            return False  # not started, stopped, or ahead of this source
        if at < start or self.in_flight >= self.limit:
            self._behind.set()
            self.check_behind()
            return False
        self.next[partition] = record.offset + 1
        if item.event is None or not self.trigger.matcher(item.attributes):
            self.tracker.skip(partition, record.offset)
            self.dispatcher.dirty(self)
            return True
        self.tracker.start(partition, record.offset)
        self.in_flight += 1
        if self.in_flight >= self.limit:
            self._room.clear()
        before = self._last.get(partition) if self.trigger.ordered else None
        task = asyncio.create_task(self._process(partition, item, before))
        self._tasks.add(task)
        self._last[partition] = task
        task.add_done_callback(self._tasks.discard)
        return True

    def behind(self) -> list[int]:
        """Partitions where this cursor has records to take that the reader already offered."""
        position = self.reader.position
        return [p for p, at in self.next.items() if p in position and at < position[p]]

    def check_behind(self) -> None:
        if not self.ready.is_set() or not self.behind():
            return
        self._behind.set()
        if self._catching_up is None or self._catching_up.done():
            self._catching_up = asyncio.create_task(self._catch_up(), name=f"catch-up {self.trigger.group}")

    async def _catch_up(self) -> None:
        """Read the partitions this cursor is behind on with a private consumer, at this Trigger's pace,
        until it is back at the reader's position; the consumer stops after `CATCH_UP_LINGER` idle."""
        dispatcher = self.dispatcher
        consumer = AIOKafkaConsumer(
            **dispatcher.kafka.options, enable_auto_commit=False, auto_offset_reset="earliest",
            fetch_max_wait_ms=dispatcher.fetch_wait_ms, max_poll_records=self.limit,
        )
        fetched: dict[int, int] = {}  # next offset this consumer returns, per partition
        try:
            await consumer.start()
            consumer.assign(self.reader.partitions)
            log.info("trigger catching up", extra={"group": self.trigger.group, "partitions": self.behind()})
            while True:
                behind = set(self.behind())
                if not behind:
                    consumer.pause(*self.reader.partitions)  # its fetcher would go on polling
                    self._behind.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._behind.wait(), CATCH_UP_LINGER)
                    if not self.behind():
                        return
                    continue
                for tp in self.reader.partitions:
                    if tp.partition not in behind:
                        consumer.pause(tp)
                        continue
                    consumer.resume(tp)
                    if fetched.get(tp.partition) != self.next[tp.partition]:
                        consumer.seek(tp, self.next[tp.partition])
                        fetched[tp.partition] = self.next[tp.partition]
                try:
                    batch = await consumer.getmany(timeout_ms=max(100, dispatcher.fetch_wait_ms * 2))
                except KafkaError as exc:
                    log.warning("catch-up fetch failed", extra={"group": self.trigger.group,
                                                                "error": kafka_reason(exc)})
                    await asyncio.sleep(1.0)
                    continue
                for tp, records in batch.items():
                    for record in records:
                        start = fetched.get(tp.partition, record.offset)
                        fetched[tp.partition] = record.offset + 1
                        await self._room.wait()
                        self.offer(start, parse(record))
        finally:
            await consumer.stop()

    # -- delivery ------------------------------------------------------------------------------------

    async def _process(self, partition: int, item: Item, before: asyncio.Task[None] | None) -> None:
        try:
            if before is not None:
                await asyncio.wait([before])
            await self._handle(item)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("record failed", extra={"group": self.trigger.group, "offset": item.record.offset})
        finally:
            self.in_flight -= 1
            self._room.set()
            self.tracker.done(partition, item.record.offset)
            self.dispatcher.dirty(self)
            if self._last.get(partition) is asyncio.current_task():
                del self._last[partition]

    async def commit(self) -> None:
        offsets = self.tracker.committable()
        if not offsets:
            return
        try:
            await self.dispatcher.offsets.commit(self.trigger.group, self.topic, offsets)
            self.tracker.mark_committed(offsets)
        except Exception as exc:
            self.dispatcher.dirty(self)  # tried again at the next interval
            log.warning("offset commit failed", extra={"group": self.trigger.group, "error": repr(exc)})

    async def _handle(self, item: Item) -> None:
        trigger, settings, event = self.trigger, self.dispatcher.settings, item.event
        assert event is not None
        labels = (trigger.namespace, trigger.name)
        spec = trigger.delivery_spec(self.broker())
        url = trigger.subscriber.url(settings.service_url_template, trigger.namespace)
        tracer = telemetry.tracer("eventing")
        if tracer is None:
            await self._deliver(item, trigger, spec, url, labels, None)
            return
        # a consumer span per Trigger delivery (messaging and CloudEvents semantic conventions),
        # child of the event's trace; attempts are client spans under it, retries and the outcome events
        span = telemetry.start(tracer, f"process {item.record.topic}", wire.event_trace(event), "CONSUMER", {
            "messaging.system": "kafka", "messaging.operation.type": "process",
            "messaging.operation.name": "process", "messaging.destination.name": item.record.topic,
            "messaging.consumer.group.name": trigger.group,
            "messaging.destination.partition.id": str(item.record.partition),
            "messaging.kafka.offset": item.record.offset, **wire.span_attributes(event),
            "par.trigger": f"{trigger.namespace}/{trigger.name}",
        })
        try:
            await self._deliver(item, trigger, spec, url, labels, span)
        finally:
            span.end()

    async def _deliver(self, item: Item, trigger: Trigger, spec, url: str, labels, span) -> None:
        settings, event = self.dispatcher.settings, item.event
        assert event is not None
        outcome = await deliver(
            self.dispatcher.session, url, event, spec, settings.delivery_timeout,
            on_retry=metrics.RETRIED.labels(*labels).inc, span=span,
        )
        if span is not None and not outcome.ok:
            from opentelemetry.trace import StatusCode

            span.set_status(StatusCode.ERROR, outcome.error or f"HTTP {outcome.status}")
            span.set_attribute("error.type", str(outcome.status) if outcome.status else "unreachable")
        if outcome.ok:
            metrics.DELIVERED.labels(*labels).inc()
            metrics.LATENCY.labels(*labels).observe(max(0.0, time.time() - item.record.timestamp / 1000))
            await self.dispatcher.reply(trigger, outcome, event)
            return
        fields = {"group": trigger.group, "event_id": event.get_id(), "url": url, "status": outcome.status,
                  "error": outcome.error, "attempts": outcome.attempts}
        dead = wire.with_extensions(event, outcome.error_extensions())
        store = self.dispatcher.dead_letters
        if spec.dead_letter_sink is None and store is not None:
            store.add(dead, Failure(trigger.namespace, trigger.name, outcome.attempts, outcome.error,
                                    outcome.headers))
            update_gauge(store)
            metrics.DEAD_LETTERED.labels(*labels).inc()
            _outcome_event(span, "dead-lettered", {"par.dead_letter.store": True})
            log.warning("delivery failed: event kept in the dead-letter store", extra=fields)
            return
        if spec.dead_letter_sink is None:
            metrics.DROPPED.labels(*labels).inc()
            _outcome_event(span, "dropped", {})
            log.error("delivery failed, no dead-letter sink: event dropped", extra=fields)
            return
        dls_url = spec.dead_letter_sink.url(settings.service_url_template, trigger.namespace)
        about = {TRIGGER_HEADER: f"{trigger.namespace}/{trigger.name}",
                 ATTEMPTS_HEADER: str(outcome.attempts)}
        dls = await deliver(self.dispatcher.session, dls_url, dead, spec, settings.delivery_timeout,
                            extra_headers=about)
        if dls.ok:
            metrics.DEAD_LETTERED.labels(*labels).inc()
            _outcome_event(span, "dead-lettered", {"par.dead_letter.sink": dls_url})
            log.warning("delivery failed: event dead-lettered", extra={**fields, "dead_letter_sink": dls_url})
        else:
            metrics.DROPPED.labels(*labels).inc()
            _outcome_event(span, "dropped", {"par.dead_letter.sink": dls_url})
            log.error("delivery and dead-letter sink failed: event dropped",
                      extra={**fields, "dead_letter_sink": dls_url, "dls_status": dls.status})


def _outcome_event(span, name: str, attributes: dict) -> None:
    """A failed delivery's end (dead-lettered, dropped) as an event on its span, if traced."""
    if span is not None:
        span.add_event(name, attributes)
