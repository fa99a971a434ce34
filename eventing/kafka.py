"""The Kafka side shared by ingress and dispatcher: one producer, topic creation, bounded sends."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from cloudevents.core.bindings.kafka import KafkaMessage

log = logging.getLogger("eventing.kafka")


class KafkaUnavailable(RuntimeError):
    """Kafka did not store the record in the bounded time (the ingress answers 503)."""


class Kafka:
    def __init__(self, bootstrap: str, produce_timeout: float) -> None:
        self.bootstrap = bootstrap
        self.produce_timeout = produce_timeout
        self.producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            linger_ms=1,
            request_timeout_ms=max(1000, int(produce_timeout * 1000)),
            # Records that already failed their client must not trickle in much later.
            retry_backoff_ms=100,
        )
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)

    async def start(self) -> None:
        try:
            await self.producer.start()
            await self.admin.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        await self.producer.stop()
        await self.admin.close()

    async def produce(self, topic: str, message: KafkaMessage) -> None:
        """Send and wait for the broker's ack; `KafkaUnavailable` past `produce_timeout`."""
        key = message.key.encode() if isinstance(message.key, str) else message.key
        headers = list(message.headers.items())
        try:
            async with asyncio.timeout(self.produce_timeout):
                future = await self.producer.send(topic, message.value, key=key, headers=headers)
                await future
        except Exception as exc:
            raise KafkaUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def ensure_topic(self, topic: str, partitions: int, replication: int) -> None:
        """Create `topic` unless it exists; replication is capped at the cluster's broker count."""
        cluster = await self.admin.describe_cluster()
        factor = max(1, min(replication, len(cluster.get("brokers", [])) or 1))
        response = await self.admin.create_topics([NewTopic(topic, partitions, factor)])
        for _name, code, *rest in getattr(response, "topic_errors", []):
            if code not in (0, TopicAlreadyExistsError.errno):
                raise RuntimeError(f"creating topic {topic} failed: error {code} {rest}")
        log.info("topic ready", extra={"topic": topic, "partitions": partitions, "replication": factor})
