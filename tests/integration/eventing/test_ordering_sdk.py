"""Delivery order (`kafka.eventing.knative.dev/delivery.order`) and the runtime SDK's emit end to end."""

from __future__ import annotations

import pytest

from runtime import sdk
from tests.integration.eventing.conftest import broker, trigger

pytestmark = pytest.mark.integration
ORDER = "kafka.eventing.knative.dev/delivery.order"


def test_ordered_delivers_one_at_a_time_in_partition_order(eventing, subscriber):
    sub = subscriber(delay=0.01)
    ordered = trigger("ordered-t", "ordered", sub.url, annotations={ORDER: "ordered"})
    ev = eventing([broker("ordered"), ordered])
    sent = [f"o-{i}" for i in range(30)]
    for event_id in sent:
        assert ev.post("ordered", event_id, partitionkey="same-key").status_code == 202
    sub.recorder.wait_for(30)
    assert sub.recorder.ids() == sent and sub.recorder.max_in_flight == 1


def test_unordered_delivers_concurrently(eventing, subscriber):
    sub = subscriber(delay=0.2)
    ev = eventing([broker("unordered"), trigger("unordered-t", "unordered", sub.url)])
    for i in range(20):
        ev.post("unordered", f"u-{i}", partitionkey="same-key")
    sub.recorder.wait_for(20, timeout=10)
    assert sorted(sub.recorder.ids()) == sorted(f"u-{i}" for i in range(20))
    assert sub.recorder.max_in_flight > 1


def test_runtime_sdk_emit_reaches_a_trigger_subscriber(eventing, subscriber, monkeypatch):
    sub = subscriber()
    ev = eventing([broker("agents"), trigger("agents-orders", "agents", sub.url,
                                             filters=[{"prefix": {"type": "com.example.order."}}])])
    monkeypatch.setenv("K_SINK", f"{ev.url}/default/agents")
    monkeypatch.setenv("K_SERVICE", "order-agent")
    response = sdk.emit("com.example.order.created", {"id": 42}, subject="orders/42",
                        extensions={"partitionkey": "42"})
    assert response.status_code == 202
    (got,) = sub.recorder.wait_for(1)
    assert got.headers["ce-type"] == "com.example.order.created"
    assert got.headers["ce-source"] == "/agents/order-agent" and got.headers["ce-subject"] == "orders/42"
    assert got.headers["ce-partitionkey"] == "42" and got.body == b'{"id": 42}'
    assert "ce-time" in got.headers  # the SDK sets time; the broker keeps it
