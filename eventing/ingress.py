"""Broker ingress `POST /{namespace}/{broker}`: answers exactly as Knative's Kafka broker ingress.

202 stored, 400 not a valid CloudEvent, 404 no such broker, 405 not POST (routing), 413 body too
large, 503 Kafka did not confirm storing it within the bounded time (it may still be stored).
"""

from __future__ import annotations

import functools
import logging

from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from eventing import metrics, wire
from eventing.control import Eventing
from eventing.kafka import KafkaUnavailable
from runtime import telemetry

log = logging.getLogger("eventing.ingress")
_ACCEPTED = Response(status_code=202)
# The Kafka client cannot take back a record it already sent: one the broker writes after the
# timeout is stored all the same. A client that retries gets the event at least once, maybe twice.
_NOT_CONFIRMED = ("Kafka did not confirm storing the event within {}s. It may still be stored: "
                  "retrying is safe but can store it twice (at-least-once).\n")


@functools.lru_cache(maxsize=4096)
def _accepted(namespace: str, broker: str) -> Counter:
    """The per-broker child of the accepted counter, looked up once (this is the hot path)."""
    return metrics.ACCEPTED.labels(namespace, broker)


class BodyTooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse(code: int, message: str, **fields: object) -> Response:
    metrics.REJECTED.labels(str(code)).inc()
    log.info("event refused", extra={"status": code, "reason": message, **fields})
    return PlainTextResponse(message + "\n", status_code=code)


async def ingress(request: Request) -> Response:
    eventing: Eventing = request.app.state.eventing
    namespace = request.path_params["namespace"]
    name = request.path_params["broker"]
    if (namespace, name) not in eventing.brokers:
        return _refuse(404, f"broker {namespace}/{name} not found", namespace=namespace, broker=name)
    try:
        body = await _read_body(request, eventing.settings.max_body_bytes)
    except BodyTooLarge:
        return _refuse(413, f"body larger than {eventing.settings.max_body_bytes} bytes", broker=name)
    try:
        event = wire.traced(wire.from_http(dict(request.headers), body), request.headers)
    except wire.InvalidEvent as exc:
        return _refuse(400, str(exc), namespace=namespace, broker=name)
    broker = eventing.brokers[(namespace, name)]
    tracer = telemetry.tracer("eventing")
    if tracer is not None:  # a producer span (messaging + CloudEvents semantic conventions)
        span = telemetry.start(tracer, f"send {broker.topic}", wire.event_trace(event), "PRODUCER", {
            "messaging.system": "kafka", "messaging.operation.type": "send",
            "messaging.operation.name": "send", "messaging.destination.name": broker.topic,
            **wire.span_attributes(event),
        })
        try:
            response = await _store(eventing, broker, event, namespace, name)
            if response.status_code >= 500:
                from opentelemetry.trace import StatusCode

                span.set_status(StatusCode.ERROR, "Kafka did not confirm storing the event")
                span.set_attribute("error.type", str(response.status_code))
            return response
        finally:
            span.end()
    return await _store(eventing, broker, event, namespace, name)


async def _store(eventing: Eventing, broker, event, namespace: str, name: str) -> Response:
    try:
        await eventing.kafka.produce(broker.topic, wire.to_kafka(event))
    except KafkaUnavailable:
        eventing.recheck_topic(broker)
        # Logged by `Kafka` when the state changes, not per request: an outage is one line, not thousands.
        metrics.REJECTED.labels("503").inc()
        return PlainTextResponse(_NOT_CONFIRMED.format(eventing.settings.produce_timeout), status_code=503)
    eventing.produced(broker.topic)
    _accepted(namespace, name).inc()
    if log.isEnabledFor(logging.DEBUG):
        log.debug("event accepted", extra={"topic": broker.topic, "event_id": event.get_id()})
    return _ACCEPTED
