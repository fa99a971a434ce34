"""The Kafka side shared by ingress and dispatcher: one producer, topic creation, bounded sends."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from typing import Any

from aiokafka import AIOKafkaClient, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from cloudevents.core.bindings.kafka import KafkaMessage

from eventing.settings import EventingSettings

log = logging.getLogger("eventing.kafka")


class KafkaUnavailable(RuntimeError):
    """Kafka did not store the record in the bounded time (the ingress answers 503)."""


def kafka_reason(exc: BaseException) -> str:
    """An aiokafka error as one line; for a broker error code, the protocol's description of it."""
    name = type(exc).__name__
    text = getattr(exc, "description", "") if getattr(exc, "errno", None) is not None else ""
    text = text or str(exc)
    return text if text.startswith(name) else f"{name}: {text}"


class OncePerWindow(logging.Filter):
    """Passes each distinct message of a logger once per `window` seconds, then says how many it held back.

    aiokafka logs every failed reconnect, metadata refresh and fetch: thousands of lines per second
    of a Kafka outage (measured: ~85,000 in 8 s on a stock Kafka). What an operator needs is that
    the state changed, and roughly how often the client retried."""

    def __init__(self, window: float = 60.0) -> None:
        super().__init__()
        self.window = window
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key, now = (record.name, str(record.msg)), time.monotonic()
        first, held = self._seen.get(key, (-self.window, 0))
        if now - first < self.window:
            self._seen[key] = (first, held + 1)
            return False
        self._seen[key] = (now, 0)
        if held:
            note = f" [{held} more like this in the last {now - first:.0f}s not logged]"
            record.msg = str(record.msg) + note.replace("%", "%%")
        return True


_CLIENT_LOG_FILTER = OncePerWindow()


def quiet_client_retries() -> None:
    """Put `OncePerWindow` on every aiokafka logger (a logger's filter sees only its own records)."""
    for name in list(logging.root.manager.loggerDict):
        if name == "aiokafka" or name.startswith("aiokafka."):
            logger = logging.getLogger(name)
            if _CLIENT_LOG_FILTER not in logger.filters:
                logger.addFilter(_CLIENT_LOG_FILTER)


def throttle_failed_metadata_refreshes() -> None:
    """Work around an aiokafka busy loop during an outage (aiokafka 0.14, calf-ai/calfkit-sdk#328).

    A consumer's fetcher that lost a partition leader asks the client for a metadata refresh and
    waits for it; with no broker answering, the refresh fails at once and the fetcher asks again:
    measured ~5,000 refreshes a second, half a core for three idle Triggers while Kafka was down.
    A failed refresh now waits the client's `retry_backoff_ms` before it reports (~10 tries a second)."""
    original = AIOKafkaClient._metadata_update
    if getattr(original, "throttled", False):
        return

    async def throttled(self: AIOKafkaClient, cluster_metadata: Any, topics: Any) -> bool:
        updated = bool(await original(self, cluster_metadata, topics))
        if not updated:
            await asyncio.sleep(self._retry_backoff)
        return updated

    throttled.throttled = True  # type: ignore[attr-defined]
    setattr(AIOKafkaClient, "_metadata_update", throttled)  # noqa: B010 - patching a method on purpose


class KafkaSettingsError(ValueError):
    """A Kafka connection setting is unusable; the message names the variable."""


def client_options(settings: EventingSettings) -> dict[str, Any]:
    """aiokafka keyword arguments for TLS and SASL, shared by the producer, consumers and admin client."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        files = {"KAFKA_SSL_CA_FILE": settings.kafka_ssl_ca_file,
                 "KAFKA_SSL_CERT_FILE": settings.kafka_ssl_cert_file,
                 "KAFKA_SSL_KEY_FILE": settings.kafka_ssl_key_file}
        for variable, path in files.items():
            if path is not None and not path.is_file():
                raise KafkaSettingsError(f"{variable}: no such file {path}")
        if (settings.kafka_ssl_cert_file is None) != (settings.kafka_ssl_key_file is None):
            raise KafkaSettingsError("KAFKA_SSL_CERT_FILE, KAFKA_SSL_KEY_FILE: set both or neither")
        try:
            options["ssl_context"] = create_ssl_context(
                cafile=str(settings.kafka_ssl_ca_file) if settings.kafka_ssl_ca_file else None,
                certfile=str(settings.kafka_ssl_cert_file) if settings.kafka_ssl_cert_file else None,
                keyfile=str(settings.kafka_ssl_key_file) if settings.kafka_ssl_key_file else None,
            )
        except ssl.SSLError as exc:
            raise KafkaSettingsError(f"KAFKA_SSL_CA_FILE/CERT_FILE/KEY_FILE: not usable PEM: {exc}") from None
    if protocol.startswith("SASL_"):
        if not settings.kafka_sasl_username or settings.kafka_sasl_password is None:
            raise KafkaSettingsError(f"KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD: required with {protocol}")
        options |= {"sasl_mechanism": settings.kafka_sasl_mechanism,
                    "sasl_plain_username": settings.kafka_sasl_username,
                    "sasl_plain_password": settings.kafka_sasl_password.get_secret_value()}
    return options


class Kafka:
    def __init__(self, bootstrap: str, produce_timeout: float, options: dict[str, Any] | None = None) -> None:
        self.bootstrap = bootstrap
        self.produce_timeout = produce_timeout
        self.options = {"bootstrap_servers": bootstrap, **(options or {})}  # every client connects alike
        self.producer = AIOKafkaProducer(
            **self.options,
            acks="all",
            linger_ms=1,
            request_timeout_ms=max(1000, int(produce_timeout * 1000)),
            # Records that already failed their client must not trickle in much later.
            retry_backoff_ms=100,
        )
        self.admin = AIOKafkaAdminClient(**self.options)
        self.refused = 0  # produce failures since Kafka last stored an event (0: Kafka is storing)
        quiet_client_retries()
        throttle_failed_metadata_refreshes()

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
            reason = kafka_reason(exc) if str(exc) else f"no acknowledgement within {self.produce_timeout}s"
            if not self.refused:
                log.error("Kafka is not storing events: the ingress answers 503",
                          extra={"topic": topic, "error": reason})
            self.refused += 1
            raise KafkaUnavailable(reason) from exc
        if self.refused:
            log.warning("Kafka stores events again", extra={"topic": topic, "refused": self.refused})
            self.refused = 0

    async def ensure_topic(self, topic: str, partitions: int, replication: int) -> None:
        """Create `topic` unless it exists; replication is capped at the cluster's broker count."""
        cluster = await self.admin.describe_cluster()
        factor = max(1, min(replication, len(cluster.get("brokers", [])) or 1))
        response = await self.admin.create_topics([NewTopic(topic, partitions, factor)])
        for _name, code, *rest in getattr(response, "topic_errors", []):
            if code not in (0, TopicAlreadyExistsError.errno):
                raise RuntimeError(f"creating topic {topic} failed: error {code} {rest}")
        log.info("topic ready", extra={"topic": topic, "partitions": partitions, "replication": factor})
