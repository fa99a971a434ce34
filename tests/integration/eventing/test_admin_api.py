"""The admin API (contract 6): Kubernetes-shaped paths, live changes, refusals naming the field."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.integration.eventing.conftest import API, broker, trigger

pytestmark = pytest.mark.integration


def test_put_get_list_delete_live(eventing, subscriber):
    sub, other = subscriber(), subscriber()
    ev = eventing()
    brokers, triggers = f"{API}/team-a/brokers", f"{API}/team-a/triggers"
    created = ev.client.put(f"{brokers}/orders", content=yaml.safe_dump(broker("orders", "team-a")),
                            headers={"content-type": "application/yaml"})
    assert created.status_code == 201
    assert created.json()["status"]["address"]["url"] == f"{ev.url}/team-a/orders"

    spec = trigger("ship", "orders", sub.url, "team-a", filter={"attributes": {"type": "order.created"}})
    assert ev.client.put(f"{triggers}/ship", json=spec).status_code == 201
    deadline = time.monotonic() + 30
    while ev.client.get(f"{triggers}/ship").json()["status"]["conditions"][0]["status"] != "True":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert ev.post("orders", "o-1", namespace="team-a", type_="order.created").status_code == 202
    sub.recorder.wait_for(1)

    # change the subscriber live (same group, no rejoin), then delete the trigger
    spec["spec"]["subscriber"]["uri"] = other.url
    assert ev.client.put(f"{triggers}/ship", json=spec).status_code == 200
    ev.post("orders", "o-2", namespace="team-a", type_="order.created")
    assert other.recorder.wait_for(1)[0].id == "o-2"
    listed = ev.client.get(triggers).json()
    assert listed["kind"] == "TriggerList" and [t["metadata"]["name"] for t in listed["items"]] == ["ship"]
    assert ev.client.delete(f"{triggers}/ship").status_code == 200
    assert ev.client.get(f"{triggers}/ship").status_code == 404
    ev.post("orders", "o-3", namespace="team-a", type_="order.created")
    time.sleep(1.0)
    assert other.recorder.ids() == ["o-2"] and sub.recorder.ids() == ["o-1"]

    assert ev.client.delete(f"{brokers}/orders").status_code == 200
    assert ev.post("orders", "o-4", namespace="team-a").status_code == 404


def test_service_ref_resolves_through_the_url_template(eventing, subscriber):
    sub = subscriber()
    ev = eventing(PAR_EVENTING_SERVICE_URL_TEMPLATE=f"http://127.0.0.1:{sub.server.port}/{{namespace}}/{{name}}")
    ev.client.put(f"{API}/default/brokers/refs", json=broker("refs"))
    spec = trigger("to-agent", "refs", "", filter={"attributes": {"type": "x"}})
    spec["spec"]["subscriber"] = {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                                          "name": "demo-agent"}}
    body = ev.client.put(f"{API}/default/triggers/to-agent", json=spec).json()
    assert body["status"]["subscriberUri"] == f"http://127.0.0.1:{sub.server.port}/default/demo-agent"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda t: t["spec"].pop("subscriber"), "spec.subscriber"),
        (lambda t: t["spec"].update(delivery={"backoffDelay": "2s"}), "spec.delivery.backoffDelay"),
        (lambda t: t["spec"].update(delivery={"retry": -1}), "spec.delivery.retry"),
        (lambda t: t["spec"].update(delivery={"backoffPolicy": "random"}), "spec.delivery.backoffPolicy"),
        (lambda t: t["spec"].update(filters=[{"cesql": "NOPE(x) = 1"}]), "spec.filters[0].cesql"),
        (lambda t: t["spec"].update(filters=[{"exact": {"a": "1", "b": "2"}}]), "spec.filters[0].exact"),
        (lambda t: t["metadata"].update(name="Bad_Name"), "metadata.name"),
        (lambda t: t["metadata"].update(annotations={"kafka.eventing.knative.dev/delivery.order": "fifo"}),
         "metadata.annotations.kafka.eventing.knative.dev/delivery.order"),
        (lambda t: t["spec"].update(subscriber={"ref": {"apiVersion": "v1", "kind": "Pod", "name": "p"}}),
         "spec.subscriber.ref"),
    ],
)
def test_invalid_trigger_is_refused_naming_the_field(eventing, change, field):
    ev = eventing()
    obj = trigger("bad", "default", "http://127.0.0.1:9/")
    change(obj)
    name = obj["metadata"]["name"]
    response = ev.client.put(f"{API}/default/triggers/{name}", content=json.dumps(obj))
    assert response.status_code == 422, response.text
    status = response.json()
    assert status["kind"] == "Status" and status["details"]["causes"][0]["field"] == field
    assert ev.client.get(f"{API}/default/triggers").json()["items"] == []


def test_admin_token_guards_the_admin_api_only(eventing):
    ev = eventing([broker("guarded")], PAR_EVENTING_ADMIN_TOKEN="s3cret")
    url = f"{API}/default/brokers/guarded"
    assert ev.client.get(url).status_code == 401
    assert ev.client.get(url, headers={"authorization": "Bearer wrong"}).status_code == 401
    assert ev.client.get(url, headers={"authorization": "Bearer s3cret"}).status_code == 200
    assert ev.post("guarded", "g-1").status_code == 202


def test_invalid_config_file_fails_fast_naming_the_field(tmp_path: Path):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump_all([broker("default"), trigger("t", "default", "not-a-url")]))
    result = subprocess.run(
        [str(Path(sys.executable).parent / "par"), "eventing", "serve", "--config", str(config),
         "--insecure-no-auth"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "spec.subscriber.uri" in result.stdout and "'t'" in result.stdout
