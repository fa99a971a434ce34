"""Generated Knative objects are what a Knative API server accepts and what the issue asks for."""

from __future__ import annotations

import jsonschema
import pytest
import yaml

from registry.knative import manifests
from registry.spec import DeploymentSpec, Scaling, TriggerSpec, VersionTarget
from tests.support.kube_schemas import as_pod, validate_core, validate_knative

SHA1, SHA2 = "a" * 64, "b" * 64


def _spec(**overrides: object) -> DeploymentSpec:
    base: dict[str, object] = dict(
        namespace="team-a",
        agent="demo-agent",
        versions=(
            VersionTarget(version="0.1.0", revision="demo-agent-0-1-0", percent=90, sha256=SHA1,
                          artifact_url=f"http://registry/v1/artifacts/{SHA1}", tag="v0-1-0"),
            VersionTarget(version="0.2.0", revision="demo-agent-0-2-0", percent=10, sha256=SHA2,
                          artifact_url=f"http://registry/v1/artifacts/{SHA2}", tag="v0-2-0"),
        ),
        scaling=Scaling(min_scale=0, max_scale=5, target=10, container_concurrency=4, timeout_seconds=120),
        env={"GREETING": "hi"},
        k_sink="http://kafka-broker-ingress.knative-eventing.svc.cluster.local/team-a/default",
        generation=3,
    )
    base.update(overrides)
    return DeploymentSpec(**base)  # type: ignore[arg-type]


TRIGGERS = [
    TriggerSpec(namespace="team-a", name="on-order", broker="default", filters={"type": "order.created"},
                subscriber_agent="demo-agent", delivery={"retry": 3, "backoffPolicy": "exponential",
                                                         "backoffDelay": "PT0.5S"}, ordering="ordered"),
    TriggerSpec(namespace="team-a", name="audit", subscriber_uri="http://audit.example.com/events"),
]


def test_every_object_validates_against_the_knative_crds() -> None:
    objects = manifests.for_agent(_spec(), TRIGGERS)
    assert [o["kind"] for o in objects] == ["Broker", "Service", "Trigger", "Trigger"]
    for obj in objects:
        validate_knative(obj)


def test_the_service_pod_spec_validates_against_kubernetes_core_schemas() -> None:
    validate_core(as_pod(manifests.service(_spec())))


def test_schema_check_catches_a_misspelt_field() -> None:
    """The strict CRD check is able to fail (an API server would prune the field silently)."""
    service = manifests.service(_spec())
    service["spec"]["template"]["spec"]["containerConcurency"] = 4
    with pytest.raises(jsonschema.ValidationError):
        validate_knative(service)


def test_service_carries_package_scaling_probe_and_a_locked_down_container() -> None:
    service = manifests.service(_spec())
    template = service["spec"]["template"]
    container = template["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    # The template is the newest version taking traffic; the older one is a named revision.
    assert template["metadata"]["name"] == "demo-agent-0-2-0"
    assert env["PACKAGE_URL"] == f"http://registry/v1/artifacts/{SHA2}"
    assert env["PACKAGE_SHA256"] == SHA2
    assert env["K_SINK"].endswith("/team-a/default")
    assert env["GREETING"] == "hi"
    assert template["metadata"]["annotations"] == {
        "autoscaling.knative.dev/min-scale": "0",
        "autoscaling.knative.dev/max-scale": "5",
        "autoscaling.knative.dev/target": "10",
    }
    assert template["spec"]["containerConcurrency"] == 4
    assert template["spec"]["timeoutSeconds"] == 120
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["limits"] and container["resources"]["requests"]
    assert service["spec"]["traffic"] == [
        {"revisionName": "demo-agent-0-1-0", "percent": 90, "tag": "v0-1-0", "latestRevision": False},
        {"revisionName": "demo-agent-0-2-0", "percent": 10, "tag": "v0-2-0", "latestRevision": False},
    ]
    assert service["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "par-registry"
    assert "networking.knative.dev/visibility" not in service["metadata"]["labels"]


def test_platform_variables_win_over_the_deployment_env() -> None:
    spec = _spec(env={"PACKAGE_URL": "http://evil/x.apkg", "K_SINK": "http://my-sink"})
    container = manifests.service(spec)["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["PACKAGE_URL"] == f"http://registry/v1/artifacts/{SHA2}"
    assert env["K_SINK"] == "http://my-sink"  # a deployment may point its events elsewhere


def test_cluster_local_visibility_and_no_broker() -> None:
    spec = _spec(cluster_local=True, broker=None, k_sink=None)
    objects = manifests.for_agent(spec)
    assert [o["kind"] for o in objects] == ["Service"]
    service = objects[0]
    assert service["metadata"]["labels"]["networking.knative.dev/visibility"] == "cluster-local"
    env = {e["name"] for e in service["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "K_SINK" not in env
    validate_knative(service)


def test_broker_is_kafka_class_with_config() -> None:
    broker = manifests.broker("team-a")
    assert broker["metadata"]["annotations"]["eventing.knative.dev/broker.class"] == "Kafka"
    assert broker["spec"]["config"] == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "kafka-broker-config",
        "namespace": "knative-eventing",
    }


def test_trigger_has_filter_ref_delivery_and_ordering() -> None:
    trigger = manifests.trigger(TRIGGERS[0])
    assert trigger["spec"]["filter"] == {"attributes": {"type": "order.created"}}
    assert trigger["spec"]["subscriber"] == {
        "ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "demo-agent"}
    }
    assert trigger["spec"]["delivery"]["retry"] == 3
    assert trigger["metadata"]["annotations"] == {"kafka.eventing.knative.dev/delivery.order": "ordered"}
    assert manifests.trigger(TRIGGERS[1])["spec"]["subscriber"] == {"uri": "http://audit.example.com/events"}


def test_yaml_stream_round_trips() -> None:
    objects = manifests.for_agent(_spec(), TRIGGERS)
    assert list(yaml.safe_load_all(manifests.to_yaml(objects))) == objects


def test_trigger_carries_knatives_filters_list_and_validates_against_the_crd() -> None:
    dialects = [{"prefix": {"type": "order."}}, {"not": {"exact": {"source": "/test"}}},
                {"any": [{"suffix": {"type": ".created"}}, {"cesql": "tier = 'gold'"}]}]
    spec = TriggerSpec(namespace="team-a", name="orders", subscriber_agent="shop", dialect_filters=dialects)
    trigger = manifests.trigger(spec)
    assert trigger["spec"]["filters"] == dialects and "filter" not in trigger["spec"]
    validate_knative(trigger)
