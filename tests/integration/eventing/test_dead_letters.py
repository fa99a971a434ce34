"""The built-in dead-letter store: failed events kept with Knative's error context, listed, shown,
sent again to their subscriber, purged; the same commands against `par eventing dlq serve`."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.eventing.conftest import API, broker, ce_headers, trigger
from tests.support.net import free_port, wait_http

pytestmark = pytest.mark.integration
PAR = str(Path(sys.executable).parent / "par")
TOKEN = "dlq-secret"
AUTH = {"authorization": f"Bearer {TOKEN}"}


def wait_listed(client: httpx.Client, count: int, **params: str) -> list[dict]:
    deadline = time.monotonic() + 20
    while len(items := client.get("/dead-letters", params=params, headers=AUTH).json()["items"]) < count:
        assert time.monotonic() < deadline, items
        time.sleep(0.05)
    return items


def test_failed_events_are_kept_shown_and_redriven_to_their_subscriber(
    eventing, subscriber, tmp_path, kafka_kind
):
    """Before: a Trigger without a deadLetterSink dropped the event with a log line."""
    broken = {"yes": True}
    down = (503, {}, b"down for maintenance")
    sub = subscriber(respond=lambda r, n: down if broken["yes"] else (200, {}, b""))
    name = f"keep-{kafka_kind}"  # the process's metrics outlive the broker of the other run
    delivery = {"retry": 1, "backoffDelay": "PT0.05S"}
    ev = eventing([broker("keep"), trigger(name, "keep", sub.url, delivery=delivery),
                   trigger(f"{name}-ok", "keep", subscriber().url)],
                  PAR_EVENTING_DEAD_LETTERS=tmp_path / "dl.sqlite3", PAR_EVENTING_ADMIN_TOKEN=TOKEN)
    assert ev.post("keep", "k-1", data=b'{"n": 1}', type_="order.created").status_code == 202
    assert ev.post("keep", "k-2", type_="order.cancelled").status_code == 202
    # two partitions may fail in either order
    first = next(i for i in wait_listed(ev.client, 2) if i["event_id"] == "k-1")
    assert first["trigger"] == name and first["namespace"] == "default" and first["event_id"] == "k-1"
    assert (first["code"], first["attempts"], first["destination"]) == (503, 2, sub.url)
    assert [i["event_id"] for i in wait_listed(ev.client, 1, type="order.cancelled")] == ["k-2"]
    assert wait_listed(ev.client, 0, trigger=f"default/{name}-ok") == []
    assert len(wait_listed(ev.client, 2, since="1h")) == 2 and wait_listed(ev.client, 0, until="1h") == []

    shown = ev.client.get(f"/dead-letters/{first['id']}", headers=AUTH).json()
    assert shown["headers"]["ce-knativeerrordest"] == sub.url
    assert shown["headers"]["ce-knativeerrorcode"] == "503"
    assert base64.b64decode(shown["headers"]["ce-knativeerrordata"]) == b"down for maintenance"
    assert shown["response_body"] == "down for maintenance" and shown["data"] == '{"n": 1}'
    metrics = ev.client.get("/metrics").text
    assert f'par_eventing_dead_letters{{namespace="default",trigger="{name}"}} 2.0' in metrics

    redrive = f"/dead-letters/{first['id']}/redrive"
    assert ev.client.post(redrive, headers=AUTH).status_code == 502  # still down
    retried = next(i for i in wait_listed(ev.client, 2) if i["event_id"] == "k-1")
    assert retried["attempts"] == 4  # 2 more: the Trigger's retry policy
    broken["yes"] = False
    before = len(sub.recorder.received)
    redriven = ev.client.post(redrive, headers=AUTH)
    assert redriven.status_code == 200 and redriven.json()["delivered"] is True
    again = sub.recorder.received[before:]
    assert [r.id for r in again] == ["k-1"] and again[0].body == b'{"n": 1}'
    assert not any(h.startswith("ce-knativeerror") for h in again[0].headers)  # the original event
    assert [i["event_id"] for i in wait_listed(ev.client, 1)] == ["k-2"]

    assert ev.client.delete("/dead-letters", params={"type": "order.cancelled"}, headers=AUTH).json() == {
        "purged": 1}
    assert wait_listed(ev.client, 0) == []
    gauge = f'par_eventing_dead_letters{{namespace="default",trigger="{name}"}}'
    assert gauge not in ev.client.get("/metrics").text
    missing = ev.client.get("/dead-letters/nope", headers=AUTH)
    assert missing.status_code == 404 and missing.json()["code"] == "dead_letter_not_found"


def test_the_store_is_a_sink_a_trigger_can_name_and_reading_needs_the_token(eventing, subscriber, tmp_path):
    sub = subscriber(respond=lambda r, n: (400, {}, b"no"))
    ev = eventing([broker("named")], PAR_EVENTING_DEAD_LETTERS=tmp_path / "dl.sqlite3",
                  PAR_EVENTING_ADMIN_TOKEN=TOKEN)
    sink = {"uri": f"{ev.url}/dead-letters"}
    spec = trigger("named-t", "named", sub.url, delivery={"deadLetterSink": sink})
    assert ev.client.put(f"{API}/default/triggers/named-t", json=spec, headers=AUTH).status_code == 201
    assert ev.post("named", "n-1").status_code == 202
    (item,) = wait_listed(ev.client, 1)
    assert (item["trigger"], item["code"], item["attempts"]) == ("named-t", 400, 1)
    assert ev.client.get("/dead-letters").status_code == 401
    assert ev.client.get("/dead-letters", headers={"authorization": "Bearer wrong"}).json()["code"] == (
        "missing_credentials")


def test_cli_lists_redrives_and_purges_against_the_knative_sink_service(subscriber, tmp_path):
    """`par eventing dlq serve` is the store alone (the Service PAR ships for Knative): a dead letter
    POSTed by a Knative dispatcher goes back to its `knativeerrordest` on redrive."""
    sub = subscriber()
    port = free_port()
    env = {**os.environ, "PAR_EVENTING_ADMIN_TOKEN": TOKEN}
    command = [PAR, "eventing", "dlq", "serve", "--store", str(tmp_path / "dl.sqlite3"), "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/healthz")
        for event_id, type_ in (("d-1", "a.b"), ("d-2", "c.d")):
            headers = {**ce_headers(event_id, type_), "ce-knativeerrordest": sub.url,
                       "ce-knativeerrorcode": "500"}
            assert httpx.post(url + "/dead-letters", content=b"{}", headers=headers).status_code == 202

        def par(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([PAR, "eventing", "dlq", *args, "--url", url, "--token", TOKEN],
                                  capture_output=True, text=True, timeout=60)

        listed = par("list")
        assert listed.returncode == 0 and "d-1" in listed.stdout and "2 dead letter(s)" in listed.stdout
        assert "d-2" not in par("list", "--type", "a.b").stdout
        redriven = par("redrive", "--type", "a.b")
        assert redriven.returncode == 0 and "1 delivered, 0 failed" in redriven.stdout, redriven.stdout
        assert sub.recorder.ids() == ["d-1"]
        assert par("purge").returncode == 2  # everything needs --yes
        assert "1 purged" in par("purge", "--yes").stdout
        assert "0 dead letter(s)" in par("list").stdout
        unauthorized = subprocess.run([PAR, "eventing", "dlq", "list", "--url", url], capture_output=True,
                                      text=True, timeout=60)
        assert unauthorized.returncode == 1 and "401" in unauthorized.stderr
    finally:
        server.terminate()
        server.wait(20)
