"""knative/eventing (Knative's Kafka broker on Strimzi) and knative/dev (the dev cluster's
PostgreSQL and Redis): valid for the API server, and agreeing with what reads them — the Broker
the registry generates, the Kafka cluster the broker config points at, the gateway's Redis URL."""

from __future__ import annotations

from urllib.parse import urlsplit

from registry.knative import manifests
from tests.support.dockerfile import knative_objects
from tests.support.kube_schemas import validate_core, validate_knative


def _one(objects: list[dict], kind: str, name: str | None = None) -> dict:
    (found,) = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    return found


def test_the_default_broker_is_the_one_the_registry_generates() -> None:
    broker = _one(knative_objects("eventing"), "Broker")
    assert broker == manifests.broker(broker["metadata"]["namespace"], broker["metadata"]["name"])
    assert broker["metadata"]["annotations"]["eventing.knative.dev/broker.class"] == "Kafka"
    validate_knative(broker)


def test_broker_config_exists_where_the_broker_points_and_matches_the_registrys_copy() -> None:
    config = _one(knative_objects("eventing"), "ConfigMap")
    validate_core(config)
    ref = _one(knative_objects("eventing"), "Broker")["spec"]["config"]
    assert (config["metadata"]["name"], config["metadata"]["namespace"]) == (ref["name"], ref["namespace"])
    # knative/registry ships the same object; applying either must not change the other's.
    assert _one(knative_objects("registry"), "ConfigMap") == config


def test_broker_config_reaches_the_strimzi_cluster_and_fits_its_size() -> None:
    objects = knative_objects("eventing")
    config = _one(objects, "ConfigMap")["data"]
    kafka = _one(objects, "Kafka")
    pools = [
        p
        for p in objects
        if p["kind"] == "KafkaNodePool"
        and p["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    ]
    brokers = sum(p["spec"]["replicas"] for p in pools if "broker" in p["spec"]["roles"])
    # Strimzi's bootstrap Service is {cluster}-kafka-bootstrap; the broker config speaks plaintext.
    plain = [
        lst for lst in kafka["spec"]["kafka"]["listeners"] if not lst["tls"] and lst["type"] == "internal"
    ]
    expected = {
        f"{kafka['metadata']['name']}-kafka-bootstrap.{kafka['metadata']['namespace']}:{lst['port']}"
        for lst in plain
    }
    assert config["bootstrap.servers"] in expected
    assert int(config["default.topic.partitions"]) >= 1
    assert 1 <= int(config["default.topic.replication.factor"]) <= brokers
    internal = kafka["spec"]["kafka"]["config"]
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "default.replication.factor",
        "min.insync.replicas",
    ):
        assert int(internal[key]) <= brokers, key


def test_strimzi_runs_the_node_pools_in_kraft_mode() -> None:
    """Without both annotations the operator ignores KafkaNodePools (and wants ZooKeeper)."""
    objects = knative_objects("eventing")
    kafka = _one(objects, "Kafka")
    assert kafka["metadata"]["annotations"] == {
        "strimzi.io/node-pools": "enabled",
        "strimzi.io/kraft": "enabled",
    }
    roles = {r for p in objects if p["kind"] == "KafkaNodePool" for r in p["spec"]["roles"]}
    assert roles == {"controller", "broker"}
    namespace = _one(objects, "Namespace", kafka["metadata"]["namespace"])
    validate_core(namespace)
    assert {o["metadata"]["namespace"] for o in objects if o["kind"].startswith("Kafka")} == {
        namespace["metadata"]["name"]
    }


def test_dev_services_are_valid_and_where_the_gateway_and_registry_look() -> None:
    objects = knative_objects("dev")
    for obj in objects:
        validate_core({**obj, "metadata": {**obj["metadata"], "namespace": "par-system"}})
    gateway = _one(knative_objects("gateway/base"), "Deployment")
    (container,) = gateway["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    redis = urlsplit(env["PAR_GATEWAY_REDIS_URL"])
    service = _one(objects, "Service", redis.hostname.split(".")[0])
    assert redis.hostname == f"{service['metadata']['name']}.par-system.svc.cluster.local"
    assert redis.port == service["spec"]["ports"][0]["port"]
    postgres = _one(objects, "Service", "par-postgres")
    assert postgres["spec"]["ports"][0]["port"] == 5432
