"""The embedded Kafka-compatible broker: answers Kafka, and leaves no orphan even if its parent is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.integration

PARENT = """
import sys, time
from eventing.embedded import EmbeddedKafka
broker = EmbeddedKafka()
broker.start()
print(broker.process.pid, broker.bootstrap, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead too
        return stat.read().split()[2] != "Z"


def test_broker_dies_with_a_sigkilled_parent():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline().split()[0])
        assert _alive(pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while _alive(pid):
            assert time.monotonic() < deadline, "embedded broker outlived its parent"
            time.sleep(0.05)
    finally:
        parent.kill()


def test_stop_is_clean_and_bootstrap_answers(embedded_kafka):
    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient

    async def brokers() -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=embedded_kafka.bootstrap)
        await admin.start()
        try:
            return len((await admin.describe_cluster())["brokers"])
        finally:
            await admin.close()

    assert asyncio.run(brokers()) == 1
    pid = embedded_kafka.process.pid
    embedded_kafka.stop()
    assert not _alive(pid)
