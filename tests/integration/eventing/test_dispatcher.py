"""The dispatcher's shape: one fetch per Broker topic shared by its Triggers, each Trigger on its own
position and pace (a slow subscriber holds back no other Trigger), and Triggers ready at once."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.integration.eventing.conftest import API, broker, trigger

pytestmark = pytest.mark.integration
ORDER = "kafka.eventing.knative.dev/delivery.order"
INITIAL_OFFSET = "kafka.eventing.knative.dev/initial-offset"


def connections_to(port: int) -> int:
    """TCP connections this process holds to 127.0.0.1:`port` (its sockets matched in /proc/net/tcp)."""
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port = int(fields[2].split(":")[1], 16)
        if remote_port == port and fields[9] in inodes and fields[3] == "01":  # ESTABLISHED
            count += 1
    return count


def test_fifty_triggers_share_one_fetch_and_each_gets_every_event(eventing, subscriber, kafka_bootstrap):
    """Each Trigger was its own consumer (own connections, own polling, own group join): the idle
    cost and the start-up time grew with the number of Triggers."""
    sub = subscriber()
    triggers = [trigger(f"many-{i}", "many", sub.url, filter={"attributes": {"type": f"t.{i % 5}"}})
                for i in range(50)]
    started = time.monotonic()
    ev = eventing([broker("many"), *triggers])
    took = time.monotonic() - started
    port = int(kafka_bootstrap.rsplit(":", 1)[1])
    connections = connections_to(port)
    assert connections <= 12, connections  # producer, admin, offsets, one reader: not one per Trigger
    assert took < 10, took
    for i in range(5):
        assert ev.post("many", f"m-{i}", type_=f"t.{i}").status_code == 202
    got = sub.recorder.wait_for(50)
    time.sleep(0.5)
    assert sorted(r.id for r in got) == sorted(f"m-{i}" for i in range(5) for _ in range(10))


def test_a_slow_subscriber_delays_no_other_trigger(eventing, subscriber):
    slow, fast = subscriber(delay=0.3), subscriber()
    ev = eventing([broker("pace"), trigger("pace-slow", "pace", slow.url),
                   trigger("pace-fast", "pace", fast.url)], PAR_EVENTING_MAX_IN_FLIGHT=4)
    sent = [f"p-{i}" for i in range(40)]
    started = time.monotonic()
    for event_id in sent:
        assert ev.post("pace", event_id, partitionkey=str(hash(event_id) % 7)).status_code == 202
    fast.recorder.wait_for(40, timeout=10)
    fast_took = time.monotonic() - started
    assert len(slow.recorder.received) < 40  # the slow one is still at it: 40 x 0.3 s / 4 at a time
    assert fast_took < 2.5, fast_took
    slow.recorder.wait_for(40, timeout=30)  # and it catches up on its own, every event once
    time.sleep(0.5)
    assert sorted(slow.recorder.ids()) == sorted(sent) and sorted(fast.recorder.ids()) == sorted(sent)
    assert slow.recorder.max_in_flight <= 4


def test_a_new_trigger_delivers_within_a_second_of_its_creation(eventing, subscriber):
    sub = subscriber()
    ev = eventing([broker("fresh")])
    started = time.monotonic()
    spec = trigger("fresh-t", "fresh", sub.url)
    assert ev.client.put(f"{API}/default/triggers/fresh-t", json=spec).status_code == 201
    url = f"{API}/default/triggers/fresh-t"
    while ev.client.get(url).json()["status"]["conditions"][0]["status"] != "True":
        assert time.monotonic() - started < 5
        time.sleep(0.02)
    assert ev.post("fresh", "n-1").status_code == 202
    sub.recorder.wait_for(1)
    took = time.monotonic() - started
    assert took < 1.0, took  # a consumer-group join took ~2 s on the embedded broker


def test_a_trigger_from_the_earliest_offset_catches_up_in_order(eventing, subscriber):
    """A Trigger behind the shared reader reads on its own until it is back with the others."""
    live, late = subscriber(), subscriber()
    ev = eventing([broker("late"), trigger("late-live", "late", live.url)])
    sent = [f"l-{i}" for i in range(30)]
    for event_id in sent[:20]:
        assert ev.post("late", event_id, partitionkey="one").status_code == 202
    live.recorder.wait_for(20)
    spec = trigger("late-t", "late", late.url, annotations={INITIAL_OFFSET: "earliest", ORDER: "ordered"})
    assert ev.client.put(f"{API}/default/triggers/late-t", json=spec).status_code == 201
    for event_id in sent[20:]:
        assert ev.post("late", event_id, partitionkey="one").status_code == 202
    late.recorder.wait_for(30)
    live.recorder.wait_for(30)
    time.sleep(0.5)
    assert late.recorder.ids() == sent and sorted(live.recorder.ids()) == sorted(sent)
