"""The live set of Brokers and Triggers, and what applying or deleting one does to Kafka and consumers.

Both the `--config` file and the admin API go through `Eventing.apply` / `delete`, so a Trigger
pushed by the registry behaves exactly like one read at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from dataclasses import replace
from typing import Any

import aiohttp

from eventing.deadletters import DeadLetterStore
from eventing.dispatcher import Dispatcher, TriggerCursor
from eventing.dlq_api import Target, by_destination
from eventing.kafka import Kafka
from eventing.objects import Broker, InvalidObject, Trigger, parse_broker, parse_trigger
from eventing.settings import EventingSettings

log = logging.getLogger("eventing.control")
Key = tuple[str, str]
KINDS = {"brokers": "Broker", "triggers": "Trigger"}


class NotReady(RuntimeError):
    """A Trigger's consumer could not start; the message has the broker's reason."""


class Eventing:
    def __init__(self, settings: EventingSettings, kafka: Kafka, *, dispatcher: bool = True) -> None:
        self.settings = settings
        self.kafka = kafka
        self.dispatcher = dispatcher
        self.brokers: dict[Key, Broker] = {}
        self.triggers: dict[Key, Trigger] = {}
        self.config_maps: dict[Key, dict[str, Any]] = {}
        self.consumers: dict[Key, TriggerCursor] = {}
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=settings.max_in_flight * 4))
        self.dead_letters = DeadLetterStore(settings.dead_letters) if settings.dead_letters else None
        self.dispatch = Dispatcher(settings, kafka, self.session, self.dead_letters)
        self._lock = asyncio.Lock()
        self._topic_checks: dict[str, asyncio.Task[None]] = {}

    def recheck_topic(self, broker: Broker) -> None:
        """After a failed produce, make sure the topic exists (a restarted memory-only Kafka lost it)."""
        running = self._topic_checks.get(broker.topic)
        if running is None or running.done():
            self._topic_checks[broker.topic] = asyncio.create_task(self._recheck(broker))

    async def _recheck(self, broker: Broker) -> None:
        try:
            await self.kafka.ensure_topic(broker.topic, *self._topic_config(broker))
        except Exception as exc:
            # an outage is logged once, by `Kafka`, when it starts and when it ends
            log.debug("topic check failed", extra={"topic": broker.topic, "error": repr(exc)})
        await asyncio.sleep(2.0)  # at most one check per topic every 2 s while Kafka is failing

    async def start(self) -> None:
        if self.dispatcher:
            await self.dispatch.start()

    async def stop(self) -> None:
        for task in self._topic_checks.values():
            task.cancel()
        self.consumers.clear()
        if self.dispatcher:
            await self.dispatch.stop()
        await self.session.close()
        if self.dead_letters is not None:
            self.dead_letters.close()

    def redrive_target(self, namespace: str, name: str, destination: str) -> Target:
        """A dead letter goes again to its Trigger's subscriber of now, with the Trigger's retries
        (its dead-letter sink aside: the dead letter stays where it is when this fails too); a reply
        goes into the Trigger's broker. A Trigger deleted since: the subscriber it failed at."""
        trigger = self.triggers.get((namespace, name))
        if trigger is None:
            return by_destination(namespace, name, destination)
        broker = self.brokers.get((namespace, trigger.broker))
        spec = replace(trigger.delivery_spec(broker), dead_letter_sink=None)
        url = trigger.subscriber.url(self.settings.service_url_template, namespace)
        return Target(url, spec, functools.partial(self.dispatch.reply, trigger))

    def produced(self, topic: str) -> None:
        """The ingress stored a record on `topic` (an idle dispatcher fetches it at once)."""
        if self.dispatcher:
            self.dispatch.produced(topic)

    # -- objects -------------------------------------------------------------------------------------

    async def apply(
        self, obj: Any, plural: str | None = None, namespace: str | None = None, name: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Create or replace a Broker or Trigger (a config file may add ConfigMaps); (object, created)."""
        kind = obj.get("kind") if isinstance(obj, dict) else None
        if plural is not None and kind != KINDS[plural]:
            raise InvalidObject("kind", f"must be {KINDS[plural]}, got {kind!r}")
        if kind == "ConfigMap" and plural is None:
            meta = obj.get("metadata") or {}
            key = (meta.get("namespace") or "default", meta.get("name", ""))
            self.config_maps[key] = obj.get("data") or {}
            return obj, True
        async with self._lock:
            if kind == "Broker":
                broker = parse_broker(obj, self.settings.crds_dir, namespace, name)
                return self.broker_view(broker), await self._put_broker(broker)
            if kind == "Trigger":
                trigger = parse_trigger(obj, self.settings.crds_dir, namespace, name)
                return self.trigger_view(trigger), await self._put_trigger(trigger)
        raise InvalidObject("kind", f"must be Broker or Trigger, got {kind!r}")

    async def delete(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        key = (namespace, name)
        async with self._lock:
            if plural == "brokers":
                broker = self.brokers.pop(key, None)
                if broker is None:
                    return None
                for tkey, bound in self.triggers.items():
                    if (bound.namespace, bound.broker) == key:
                        await self._stop_consumer(tkey)
                log.info("broker deleted (topic kept)", extra={"namespace": namespace, "broker": name})
                return self.broker_view(broker)
            trigger = self.triggers.pop(key, None)
            if trigger is None:
                return None
            await self._stop_consumer(key)
            log.info("trigger deleted", extra={"namespace": namespace, "trigger": name})
            return self.trigger_view(trigger)

    async def _put_broker(self, broker: Broker) -> bool:
        key = (broker.namespace, broker.name)
        partitions, replication = self._topic_config(broker)
        await self.kafka.ensure_topic(broker.topic, partitions, replication)
        created = key not in self.brokers
        self.brokers[key] = broker
        for tkey, trigger in self.triggers.items():
            if (trigger.namespace, trigger.broker) == key and tkey not in self.consumers:
                self._start_consumer(trigger)
        log.info("broker applied", extra={"namespace": broker.namespace, "broker": broker.name,
                                          "topic": broker.topic, "new": created})
        return created

    async def _put_trigger(self, trigger: Trigger) -> bool:
        key = (trigger.namespace, trigger.name)
        old = self.triggers.get(key)
        self.triggers[key] = trigger
        consumer = self.consumers.get(key)
        same_stream = old is not None and (old.broker, old.ordered, old.initial_offset) == (
            trigger.broker, trigger.ordered, trigger.initial_offset)
        if consumer is not None and same_stream:
            consumer.trigger = trigger  # filter, subscriber, delivery change in place, position kept
        else:
            await self._stop_consumer(key)
            if (trigger.namespace, trigger.broker) in self.brokers:
                self._start_consumer(trigger)
        log.info("trigger applied", extra={"namespace": trigger.namespace, "trigger": trigger.name,
                                           "broker": trigger.broker, "new": old is None})
        return old is None

    def _topic_config(self, broker: Broker) -> tuple[int, int]:
        """Partitions and replication from the Broker's `spec.config` ConfigMap, else Knative's defaults."""
        ref = (broker.obj.get("spec") or {}).get("config") or {}
        data = self.config_maps.get((ref.get("namespace") or broker.namespace, ref.get("name", "")), {})
        try:
            return (int(data.get("default.topic.partitions", self.settings.default_partitions)),
                    int(data.get("default.topic.replication.factor", self.settings.default_replication)))
        except ValueError:
            raise InvalidObject("spec.config", "the ConfigMap's topic settings are not integers") from None

    def _start_consumer(self, trigger: Trigger) -> None:
        if not self.dispatcher:
            return
        key = (trigger.namespace, trigger.name)
        self.consumers[key] = self.dispatch.attach(
            trigger, lambda: self.brokers.get((trigger.namespace, trigger.broker)))

    async def _stop_consumer(self, key: Key) -> None:
        consumer = self.consumers.pop(key, None)
        if consumer is not None:
            await self.dispatch.detach(consumer)

    # -- status --------------------------------------------------------------------------------------

    def ready(self) -> bool:
        return all(c.ready.is_set() for c in self.consumers.values())

    def failures(self) -> dict[str, str]:
        """Triggers whose consumer could not start ("namespace/name" -> the broker's reason)."""
        return {f"{ns}/{name}": c.failure for (ns, name), c in self.consumers.items() if c.failure}

    async def wait_ready(self, seconds: float) -> None:
        """Until every Trigger knows its offsets, or `NotReady` as soon as one cannot start."""
        await asyncio.wait_for(asyncio.gather(*(c.settled.wait() for c in self.consumers.values())), seconds)
        failures = self.failures()
        if failures:
            raise NotReady("; ".join(f"trigger {key}: {why}" for key, why in sorted(failures.items())))

    async def settled(self, view: dict[str, Any], seconds: float) -> dict[str, Any]:
        """The Trigger's view once its consumer is ready or failed (or `seconds` passed)."""
        meta = view["metadata"]
        consumer = self.consumers.get((meta["namespace"], meta["name"]))
        if consumer is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(consumer.settled.wait(), seconds)
        return self.view("triggers", meta["namespace"], meta["name"]) or view

    def ingress_url(self) -> str:
        return (self.settings.ingress_url or f"http://127.0.0.1:{self.settings.port}").rstrip("/")

    def broker_view(self, broker: Broker) -> dict[str, Any]:
        url = f"{self.ingress_url()}/{broker.namespace}/{broker.name}"
        return {**broker.obj, "status": {"address": {"url": url}, "conditions": [_condition(True, "")]}}

    def trigger_view(self, trigger: Trigger) -> dict[str, Any]:
        key = (trigger.namespace, trigger.name)
        consumer = self.consumers.get(key)
        if (trigger.namespace, trigger.broker) not in self.brokers:
            condition = _condition(False, "BrokerDoesNotExist")
        elif not self.dispatcher:
            condition = _condition(False, "DispatcherNotRunningHere")
        elif consumer is not None and consumer.failure:
            condition = _condition(False, "ConsumerFailed", consumer.failure)
        elif consumer is None or not consumer.ready.is_set():
            condition = _condition(False, "ConsumerStarting")
        else:
            condition = _condition(True, "")
        uri = trigger.subscriber.url(self.settings.service_url_template, trigger.namespace)
        return {**trigger.obj, "status": {"subscriberUri": uri, "conditions": [condition]}}

    def view(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        if plural == "brokers":
            broker = self.brokers.get((namespace, name))
            return self.broker_view(broker) if broker else None
        trigger = self.triggers.get((namespace, name))
        return self.trigger_view(trigger) if trigger else None

    def list(self, plural: str, namespace: str) -> list[dict[str, Any]]:
        items = self.brokers if plural == "brokers" else self.triggers
        return [v for (ns, name) in sorted(items) if ns == namespace and (v := self.view(plural, ns, name))]


def _condition(ok: bool, reason: str, message: str = "") -> dict[str, str]:
    out = {"type": "Ready", "status": "True" if ok else "False"}
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    return out
