"""The fault list of the eventing issue, against the real embedded broker and real subscribers."""

from __future__ import annotations

import base64
import collections
import contextlib
import itertools
import logging
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from eventing.objects import topic_name
from tests.integration.eventing.conftest import broker, ce_headers, topic_records, trigger
from tests.support.net import free_port, wait_http

pytestmark = pytest.mark.integration


def test_500_500_200_is_delivered_once_after_the_policy_delays(eventing, subscriber, kafka_kind):
    sub = subscriber(respond=lambda r, attempt: (500 if attempt <= 2 else 200, {}, b""))
    delivery = {"retry": 3, "backoffPolicy": "linear", "backoffDelay": "PT0.3S"}
    name = f"retry-{kafka_kind}"  # the process's metrics outlive the broker of the other run
    ev = eventing([broker("retry"), trigger(name, "retry", sub.url, delivery=delivery)])
    assert ev.post("retry", "r-1").status_code == 202
    got = sub.recorder.wait_for(3)
    time.sleep(0.8)  # a wrong 4th attempt would come at +0.9 s
    assert [r.id for r in sub.recorder.received] == ["r-1"] * 3
    gaps = [b.at - a.at for a, b in itertools.pairwise(got)]
    # linear: delay * retry number -> 0.3 s then 0.6 s
    assert 0.3 <= gaps[0] < 0.55 and 0.6 <= gaps[1] < 0.9, gaps
    metrics = ev.client.get("/metrics").text
    assert f'par_eventing_delivery_retries_total{{namespace="default",trigger="{name}"}} 2.0' in metrics


def test_non_retryable_status_is_not_retried(eventing, subscriber):
    sub = subscriber(respond=lambda r, attempt: (400, {}, b"bad"))
    dls = subscriber()
    delivery = {"retry": 3, "backoffDelay": "PT0.05S", "deadLetterSink": {"uri": dls.url}}
    ev = eventing([broker("noretry"), trigger("noretry-t", "noretry", sub.url, delivery=delivery)])
    ev.post("noretry", "n-1")
    (dead,) = dls.recorder.wait_for(1)
    assert sub.recorder.ids() == ["n-1"]
    assert dead.headers["ce-knativeerrorcode"] == "400"


def test_dead_letter_with_error_extensions_while_later_events_flow(eventing, subscriber):
    def flaky(received, attempt):
        return (500, {}, b"boom: " + received.body) if b"fail" in received.body else (200, {}, b"")

    sub, dls = subscriber(respond=flaky), subscriber()
    down = f"http://127.0.0.1:{free_port()}/"  # nothing listens there: down for good
    delivery = {"retry": 2, "backoffPolicy": "exponential", "backoffDelay": "PT0.05S",
                "deadLetterSink": {"uri": dls.url}}
    ev = eventing([broker("dlq"), trigger("dlq-flaky", "dlq", sub.url, delivery=delivery),
                   trigger("dlq-down", "dlq", down, delivery=delivery,
                           filter={"attributes": {"type": "demo.down"}})])
    assert ev.post("dlq", "bad-1", data=b'{"fail": true}').status_code == 202
    for i in range(5):
        assert ev.post("dlq", f"ok-{i}").status_code == 202
    assert ev.post("dlq", "gone-1", type_="demo.down").status_code == 202

    dead = {r.id: r for r in dls.recorder.wait_for(2)}
    assert set(dead) == {"bad-1", "gone-1"}
    bad = dead["bad-1"].headers
    assert bad["ce-knativeerrordest"] == sub.url and bad["ce-knativeerrorcode"] == "500"
    assert base64.b64decode(bad["ce-knativeerrordata"]) == b'boom: {"fail": true}'
    assert dead["bad-1"].body == b'{"fail": true}' and bad["ce-type"] == "demo.hello"
    gone = dead["gone-1"].headers
    assert gone["ce-knativeerrordest"] == down and "ce-knativeerrorcode" not in gone
    # the failing event took 1 + 2 attempts; the later ones still arrived
    sub.recorder.wait_for(3 + 5 + 1)  # gone-1 also matches dlq-flaky (no filter) and is delivered there
    assert sub.recorder.ids().count("bad-1") == 3
    assert {f"ok-{i}" for i in range(5)} <= set(sub.recorder.ids())


def test_kafka_unreachable_answers_503_promptly_then_recovers(own_kafka, eventing_on):
    kind, kafka = own_kafka
    ev = eventing_on(kafka.bootstrap, kind, [broker("outage")], dispatcher=False,
                     PAR_EVENTING_PRODUCE_TIMEOUT=1.0)
    assert ev.post("outage", "before").status_code == 202
    kafka.pause()
    try:
        started = time.monotonic()
        response = ev.post("outage", "during")
        took = time.monotonic() - started
        assert response.status_code == 503 and took < 3.0, (response.status_code, took)
        assert "may still be stored" in response.text  # the client cannot take a sent record back
    finally:
        kafka.resume()
    deadline = time.monotonic() + 20
    while (status := ev.post("outage", "after").status_code) != 202 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status == 202


def test_restarted_kafka_serves_again_with_its_topic(own_kafka, eventing_on):
    kind, kafka = own_kafka
    ev = eventing_on(kafka.bootstrap, kind, [broker("restart")], dispatcher=False,
                     PAR_EVENTING_PRODUCE_TIMEOUT=1.0)
    assert ev.post("restart", "before").status_code == 202
    kafka.stop()
    assert ev.post("restart", "down").status_code == 503
    kafka.start()  # same port; Tansu's memory is empty (the topic is gone), Kafka kept its log
    deadline = time.monotonic() + 30
    while (status := ev.post("restart", "after").status_code) != 202 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert status == 202


def _serve(
    config: Path, port: int, bootstrap: str, log: Path, *flags: str
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "PAR_EVENTING_INSECURE_NO_AUTH": "true"}
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "par"), "eventing", "serve", "--config", str(config),
         "--port", str(port), *flags],
        env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )


def test_sigkilled_dispatcher_restarts_and_delivers_every_accepted_event(
    eventing, subscriber, kafka_bootstrap, kafka_kind, tmp_path
):
    sub = subscriber(delay=0.005)
    config = tmp_path / "brokers.yaml"
    # default initial offset `latest`: what arrives while the dispatcher is dead must come from the
    # offsets it committed, not from where the topic ends when it is back.
    objects = [broker("crash"), trigger("crash-t", "crash", sub.url)]
    config.write_text(yaml.safe_dump_all(objects))
    ingress = eventing([broker("crash")], dispatcher=False)
    port, log = free_port(), tmp_path / "dispatcher.log"
    dispatcher = _serve(config, port, kafka_bootstrap, log, "--no-ingress")
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", timeout=60)
        accepted: list[str] = []

        def produce() -> None:
            with httpx.Client(base_url=ingress.url) as client:
                for i in range(400):
                    event_id = f"c-{i}"
                    response = client.post("/default/crash", content=b"{}", headers=ce_headers(event_id))
                    if response.status_code == 202:
                        accepted.append(event_id)
                    time.sleep(0.004)

        producer = threading.Thread(target=produce)
        producer.start()
        sub.recorder.wait_for(60)
        dispatcher.send_signal(signal.SIGKILL)
        dispatcher.wait(10)
        killed_at = len(sub.recorder.received)
        producer.join(60)
        dispatcher = _serve(config, port, kafka_bootstrap, log, "--no-ingress")
        deadline = time.monotonic() + 60
        while not set(accepted) <= set(sub.recorder.ids()):
            assert time.monotonic() < deadline, f"missing {len(set(accepted) - set(sub.recorder.ids()))}"
            time.sleep(0.1)
    finally:
        dispatcher.terminate()
        dispatcher.wait(20)
    ids = sub.recorder.ids()
    duplicates = len(ids) - len(set(ids))
    print(f"\naccepted={len(accepted)} delivered={len(ids)} duplicates={duplicates} killed_after={killed_at}")
    assert len(accepted) == 400 and set(ids) == set(accepted)
    assert 0 < killed_at < 400


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def logged_at_info() -> Iterator[list[logging.LogRecord]]:
    """Every record the process logs at INFO and above (the level `par eventing serve` runs at)."""
    handler, root = _Records(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler.records
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_an_outage_logs_state_changes_and_does_not_spin(own_kafka, eventing_on, subscriber):
    kind, kafka = own_kafka
    sub = subscriber()
    triggers = [trigger(f"quiet-{i}", "quiet", sub.url) for i in range(3)]
    ev = eventing_on(kafka.bootstrap, kind, [broker("quiet"), *triggers], PAR_EVENTING_PRODUCE_TIMEOUT=0.5)
    assert ev.post("quiet", "q-0").status_code == 202
    sub.recorder.wait_for(3)
    with logged_at_info() as records:
        kafka.stop()
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        refused, until = 0, time.monotonic() + 8
        while time.monotonic() < until:
            refused += ev.post("quiet", f"q-{refused}").status_code == 503
            time.sleep(0.05)
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        kafka.start()
        deadline = time.monotonic() + 30
        while ev.post("quiet", "q-after").status_code != 202:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    # the platform's lines (httpx logs this test's own requests)
    lines = collections.Counter(f"{r.name}: {r.msg}"[:120] for r in records if not r.name.startswith("httpx"))
    # this process: the eventing server, its subscriber and this test's client (the broker is another)
    cores = (cpu_after.ru_utime + cpu_after.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime) / 8
    print(f"\n{kind}: {cores:.2f} cores; {sum(lines.values())} lines logged over an 8 s outage "
          f"({refused} events refused):")
    for line, count in lines.most_common(12):
        print(f"  {count:5d}  {line}")
    assert refused >= 5
    assert sum(lines.values()) <= 30, lines.most_common(10)
    assert cores < 0.25  # aiokafka's consumers retried metadata without a pause: ~0.5 core for 3 Triggers


def test_stopping_while_kafka_is_down_is_bounded(own_kafka, eventing_on, subscriber):
    """A delivery that ends while Kafka is gone leaves an offset to commit: the stop gives up on it."""
    kind, kafka = own_kafka
    sub = subscriber(delay=1.0)
    ev = eventing_on(kafka.bootstrap, kind, [broker("gone"), trigger("gone-t", "gone", sub.url)])
    assert ev.post("gone", "g-1").status_code == 202
    sub.recorder.wait_for(1)  # delivered, the subscriber still answering
    kafka.stop()
    time.sleep(1.5)  # the delivery ends; its commit cannot reach Kafka
    started = time.monotonic()
    ev.server.stop()
    took = time.monotonic() - started
    assert not ev.server.thread.is_alive() and took < 10, took


def _stream_through(
    kafka: Any, kind: str, fault: Callable[[], None], eventing_on: Any, subscriber: Any, name: str
) -> None:
    """300 events from an at-least-once client (a 503 is sent again) while `fault` hits Kafka mid-stream:
    every accepted event is stored and delivered; duplicates come only from events answered 503."""
    sub = subscriber()
    ev = eventing_on(kafka.bootstrap, kind, [broker(name), trigger(f"{name}-t", name, sub.url)],
                     PAR_EVENTING_PRODUCE_TIMEOUT=1.0)
    accepted: list[str] = []
    refused: collections.Counter[str] = collections.Counter()

    def produce() -> None:
        with httpx.Client(base_url=ev.url, timeout=30) as client:
            for i in range(300):
                event_id = f"{name}-{i}"
                headers = ce_headers(event_id)
                while client.post(f"/default/{name}", content=b"{}", headers=headers).status_code != 202:
                    refused[event_id] += 1
                    time.sleep(0.1)
                accepted.append(event_id)
                time.sleep(0.01)

    producer = threading.Thread(target=produce)
    producer.start()
    sub.recorder.wait_for(50, timeout=30)
    fault()
    producer.join(120)
    deadline = time.monotonic() + 60
    while not set(accepted) <= set(sub.recorder.ids()):
        assert time.monotonic() < deadline, f"missing {len(set(accepted) - set(sub.recorder.ids()))}"
        time.sleep(0.1)
    stored = collections.Counter(dict(r.headers)["ce_id"].decode()
                                 for r in topic_records(kafka.bootstrap, topic_name("default", name)))
    twice = {event_id for event_id, count in stored.items() if count > 1}
    delivered = sub.recorder.ids()
    print(f"\n{kind} {name}: accepted={len(accepted)} answered-503={sum(refused.values())} "
          f"(events {len(refused)}) stored-twice={len(twice)} "
          f"delivered-twice={len(delivered) - len(set(delivered))}")
    assert len(accepted) == 300 and set(stored) == set(accepted)
    assert twice <= set(refused), twice - set(refused)


def test_sigkilled_kafka_restarted_mid_stream_loses_no_accepted_event(real_kafka, eventing_on, subscriber):
    def crash() -> None:
        real_kafka.kill()
        time.sleep(1.0)
        real_kafka.start()

    _stream_through(real_kafka, "kafka", crash, eventing_on, subscriber, "kill9")


def test_frozen_broker_mid_stream_loses_no_accepted_event(own_kafka, eventing_on, subscriber):
    kind, kafka = own_kafka

    def freeze() -> None:
        kafka.pause()
        time.sleep(3.0)
        kafka.resume()

    _stream_through(kafka, kind, freeze, eventing_on, subscriber, "frozen")
