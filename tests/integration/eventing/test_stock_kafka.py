"""What a stock Apache Kafka asks of the eventing component: its limits, its refusals, its outages."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.integration.eventing.conftest import (
    API,
    broker,
    group_member,
    group_offsets,
    simple_commit,
    trigger,
)
from tests.support.kafka import SASL_PASSWORD, SASL_USER

pytestmark = pytest.mark.integration
PAR = str(Path(sys.executable).parent / "par")


def test_a_trigger_is_ready_at_once_and_joins_no_group(eventing, subscriber, kafka_bootstrap):
    """No group join (it took ~2 s per Trigger on Tansu): offsets go to Knative's group name as a
    simple consumer's, so the group has the Trigger's offsets and no member."""
    sub = subscriber()
    started = time.monotonic()
    ev = eventing([broker("defaults"), trigger("defaults-t", "defaults", sub.url)])
    assert time.monotonic() - started < 4.0
    assert ev.post("defaults", "d-1").status_code == 202
    assert sub.recorder.wait_for(1)[0].id == "d-1"
    group, topic = "knative-trigger-default-defaults-t", "knative-broker-default-defaults"
    deadline = time.monotonic() + 5
    while sum((committed := group_offsets(kafka_bootstrap, group, topic)).values()) < 1:
        assert time.monotonic() < deadline, committed  # d-1's offset, committed in the Trigger's group
        time.sleep(0.1)
    # a member in the group would make the broker refuse a simple consumer's commit (UnknownMemberId)
    simple_commit(kafka_bootstrap, group, topic, committed)


def test_refused_consumer_fails_at_once_with_the_brokers_reason(kafka_bootstrap, tmp_path):
    config = tmp_path / "objects.yaml"
    config.write_text(yaml.safe_dump_all([broker("refused"), trigger("refused-t", "refused", "http://127.0.0.1:9/")]))
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "PAR_EVENTING_INSECURE_NO_AUTH": "true"}
    # another consumer is a member of the Trigger's group: the broker refuses our commits
    with group_member(kafka_bootstrap, "knative-broker-default-refused", "knative-trigger-default-refused-t"):
        started = time.monotonic()
        result = subprocess.run([PAR, "eventing", "serve", "--config", str(config), "--port", "0"], env=env,
                                capture_output=True, text=True, timeout=60)
    took = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode != 0 and took < 20, (result.returncode, took, output[-2000:])
    assert "UnknownMemberIdError" in output and "another consumer uses this Trigger's group" in output
    assert "trigger default/refused-t" in output
    assert "Unclosed" not in output, output[-2000:]


def test_refused_trigger_added_live_shows_the_reason(eventing, kafka_bootstrap):
    ev = eventing([broker("live-refused")])
    spec = trigger("live-refused-t", "live-refused", "http://127.0.0.1:9/")
    with group_member(kafka_bootstrap, "knative-broker-default-live-refused",
                      "knative-trigger-default-live-refused-t"):
        created = ev.client.put(f"{API}/default/triggers/live-refused-t", json=spec)
    assert created.status_code == 201
    condition = created.json()["status"]["conditions"][0]  # answered once the Trigger settled
    read = ev.client.get(f"{API}/default/triggers/live-refused-t").json()
    assert read["status"]["conditions"] == [condition]
    assert condition["status"] == "False" and condition["reason"] == "ConsumerFailed"
    assert "UnknownMemberIdError" in condition["message"]
    ready = ev.client.get("/readyz")
    assert ready.status_code == 503
    assert "UnknownMemberIdError" in ready.json()["failures"]["default/live-refused-t"]


@pytest.mark.parametrize("access", ["SSL", "SASL_SSL PLAIN", "SASL_SSL SCRAM-SHA-512"])
def test_managed_kafka_over_tls_and_sasl(eventing_on, subscriber, kafka_server, access):
    """TLS on loopback with a self-signed CA: mutual TLS on Kafka's SSL listener, or SASL over TLS."""
    tls = kafka_server.tls
    protocol, _, mechanism = access.partition(" ")
    env = {"KAFKA_SECURITY_PROTOCOL": protocol, "KAFKA_SSL_CA_FILE": str(tls.ca)}
    if protocol == "SSL":
        port = kafka_server.ssl_port
        env |= {"KAFKA_SSL_CERT_FILE": str(tls.client_cert), "KAFKA_SSL_KEY_FILE": str(tls.client_key)}
    else:
        port = kafka_server.sasl_port
        env |= {"KAFKA_SASL_MECHANISM": mechanism, "KAFKA_SASL_USERNAME": SASL_USER,
                "KAFKA_SASL_PASSWORD": SASL_PASSWORD}
    sub = subscriber()
    name = "secure-" + access.replace(" ", "-").replace("_", "-").lower()
    ev = eventing_on(f"127.0.0.1:{port}", "kafka", [broker(name), trigger(f"{name}-t", name, sub.url)], **env)
    assert ev.post(name, "s-1").status_code == 202
    assert sub.recorder.wait_for(1)[0].id == "s-1"


@pytest.mark.parametrize(
    ("env", "variable"),
    [({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
     ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_FILE": "/nonexistent/ca.pem"}, "KAFKA_SSL_CA_FILE"),
     ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "u"}, "KAFKA_SASL_PASSWORD"),
     ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "MD5"}, "KAFKA_SASL_MECHANISM")],
)
def test_bad_kafka_setting_is_one_line_naming_the_variable(env, variable):
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9", "PAR_EVENTING_INSECURE_NO_AUTH": "true",
           **env}
    result = subprocess.run([PAR, "eventing", "serve"], env=env, capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 2 and variable in output and "Traceback" not in output
