"""Kafka for tests: the embedded Tansu broker (eventing.embedded), or KAFKA_BOOTSTRAP_SERVERS.

Session fixture `kafka_bootstrap` -> "host:port". Topics and consumer groups are shared by the
whole session, so tests use their own broker/trigger names.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from eventing.embedded import EmbeddedKafka


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    broker = EmbeddedKafka()
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture
def embedded_kafka() -> Iterator[EmbeddedKafka]:
    """A private embedded broker for tests that stop or freeze it (fault injection)."""
    broker = EmbeddedKafka()
    broker.start()
    try:
        yield broker
    finally:
        broker.resume()
        broker.stop()
