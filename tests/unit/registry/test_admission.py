"""Knative's webhook rules as PAR applies them before storing: one table per kind, every rule with a
valid and an invalid case, the field named as Knative names it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from registry.knative import admission, manifests
from registry.spec import DeploymentSpec, TriggerSpec, VersionTarget

SHA = "d" * 64
Obj = dict[str, Any]


def _service() -> Obj:
    spec = DeploymentSpec(
        namespace="team-a",
        agent="shop",
        versions=(VersionTarget(version="1.0.0", revision="shop-1-0-0", percent=100, sha256=SHA,
                                artifact_url=f"http://registry/v1/artifacts/{SHA}"),),
    )
    return manifests.service(spec)


def _template(obj: Obj) -> Obj:
    return obj["spec"]["template"]


def _annotate(key: str, value: str) -> Callable[[Obj], None]:
    name = f"autoscaling.knative.dev/{key}"
    return lambda o: _template(o)["metadata"]["annotations"].__setitem__(name, value)


def _spec_field(key: str, value: object) -> Callable[[Obj], None]:
    return lambda o: _template(o)["spec"].__setitem__(key, value)


def _container(key: str, value: object) -> Callable[[Obj], None]:
    return lambda o: _template(o)["spec"]["containers"][0].__setitem__(key, value)


def _env(name: str) -> Callable[[Obj], None]:
    return lambda o: _template(o)["spec"]["containers"][0]["env"].append({"name": name, "value": "1"})


def _port(number: int, name: str = "http1") -> Callable[[Obj], None]:
    return _container("ports", [{"name": name, "containerPort": number, "protocol": "TCP"}])


def _both(*changes: Callable[[Obj], None]) -> Callable[[Obj], None]:
    return lambda o: [change(o) for change in changes] and None


def _traffic(*targets: tuple[str, int]) -> Callable[[Obj], None]:
    return lambda o: o["spec"].update(traffic=[
        {"revisionName": f"shop-{tag}", "percent": percent, "tag": tag} for tag, percent in targets
    ])


TEMPLATE = "spec.template.metadata.annotations.autoscaling.knative.dev"
CONTAINER = "spec.template.spec.containers[0]"
# rule: (a change Knative accepts, a change it refuses, the field it names, words of its message)
SERVICE_RULES = {
    "service name is a DNS-1035 label": (
        lambda o: o["metadata"].update(name="shop"),
        lambda o: o["metadata"].update(name="Shop_1"),
        "metadata.name", "not a DNS 1035 label",
    ),
    "service name at most 63 characters": (
        lambda o: o["metadata"].update(name="s" * 63) or _template(o)["metadata"].update(name=None),
        lambda o: o["metadata"].update(name="s" * 64),
        "metadata.name", "no more than 63 characters",
    ),
    "revision name has the service's prefix": (
        lambda o: _template(o)["metadata"].update(name="shop-anything"),
        lambda o: _template(o)["metadata"].update(name="other-1-0-0"),
        "spec.template.metadata.name", 'must have prefix "shop-"',
    ),
    "revision name is a DNS-1035 label": (
        lambda o: _template(o)["metadata"].update(name="shop-v2"),
        lambda o: _template(o)["metadata"].update(name="shop-V2"),
        "spec.template.metadata.name", "not a DNS 1035 label",
    ),
    "min-scale is a non-negative integer": (
        _annotate("min-scale", "3"), _annotate("min-scale", "-1"),
        f"{TEMPLATE}/min-scale", "expected 0 <= -1 <= 2147483647",
    ),
    "max-scale is an integer": (
        _annotate("max-scale", "10"), _annotate("max-scale", "ten"),
        f"{TEMPLATE}/max-scale", "invalid value: ten",
    ),
    "scale fits in 32 bits": (
        _annotate("max-scale", "2147483647"), _annotate("max-scale", "2147483648"),
        f"{TEMPLATE}/max-scale", "expected 0 <= 2147483648 <= 2147483647",
    ),
    "min-scale <= max-scale": (
        _both(_annotate("min-scale", "3"), _annotate("max-scale", "3")),
        _both(_annotate("min-scale", "3"), _annotate("max-scale", "1")),
        f"{TEMPLATE}/max-scale, {TEMPLATE}/min-scale", "max-scale=1 is less than min-scale=3",
    ),
    "max-scale 0 is unlimited": (
        _both(_annotate("min-scale", "3"), _annotate("max-scale", "0")),
        _both(_annotate("min-scale", "4"), _annotate("max-scale", "2")),
        f"{TEMPLATE}/max-scale, {TEMPLATE}/min-scale", "max-scale=2 is less than min-scale=4",
    ),
    "target at least 0.01": (
        _annotate("target", "0.5"), _annotate("target", "0"),
        f"{TEMPLATE}/target", "should be at least 0.01",
    ),
    "containerConcurrency 0..1000": (
        _spec_field("containerConcurrency", 1000), _spec_field("containerConcurrency", 2000),
        "spec.template.spec.containerConcurrency", "expected 0 <= 2000 <= 1000",
    ),
    "containerConcurrency not negative": (
        _spec_field("containerConcurrency", 0), _spec_field("containerConcurrency", -1),
        "spec.template.spec.containerConcurrency", "expected 0 <= -1 <= 1000",
    ),
    "timeoutSeconds <= max-revision-timeout-seconds": (
        _spec_field("timeoutSeconds", 600), _spec_field("timeoutSeconds", 700),
        "spec.template.spec.timeoutSeconds", "expected 0 <= 700 <= 600",
    ),
    "image reference parses": (
        _container("image", "registry.example.com:5000/team/par-runtime:1.0@sha256:" + "a" * 64),
        _container("image", "ghcr.io/Pixell/par-runtime:0.1.0"),
        f"{CONTAINER}.image", "Failed to parse image reference",
    ),
    "image tag characters": (
        _container("image", "par-runtime:v1.2_3-rc"), _container("image", "par-runtime:v1+2"),
        f"{CONTAINER}.image", "Failed to parse image reference",
    ),
    "image digest is sha256": (
        _container("image", "ghcr.io/pixell/par@sha256:" + "0" * 64),
        _container("image", "ghcr.io/pixell/par@md5:00"),
        f"{CONTAINER}.image", "Failed to parse image reference",
    ),
    "image is required": (
        _container("image", "busybox"), _container("image", ""),
        f"{CONTAINER}.image", "missing field",
    ),
    **{
        f"{name} is a reserved environment variable": (
            _env("PORTS"), _env(name), f"{CONTAINER}.env[{{i}}].name",
            f'"{name}" is a reserved environment variable',
        )
        for name in ("PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION")
    },
    **{
        f"port {number} is reserved": (
            _port(8080), _port(number), f"{CONTAINER}.ports.containerPort", f"invalid value: {number}",
        )
        for number in (8012, 8013, 8022, 9090, 9091, 8008)
    },
    "traffic tags are DNS-1035 labels": (
        lambda o: o["spec"]["traffic"][0].update(tag="v1-0-0"),
        lambda o: o["spec"]["traffic"][0].update(tag="1-0-0"),
        "spec.traffic[0].tag", "not a DNS 1035 label",
    ),
    "traffic tags are unique": (
        _traffic(("v1", 50), ("v2", 50)), _traffic(("v1", 50), ("v1", 50)),
        "spec.traffic[1].tag, spec.traffic[0].tag", 'Multiple definitions for "v1"',
    ),
    "traffic sums to 100": (
        _traffic(("v1", 90), ("v2", 10)), _traffic(("v1", 90), ("v2", 20)),
        "spec.traffic", "Traffic targets sum to 110, want 100",
    ),
    "port name h2c or http1": (
        _port(8080, "h2c"), _port(8080, "grpc"), f"{CONTAINER}.ports", "Port name grpc is not allowed",
    ),
}


@pytest.mark.parametrize("rule", SERVICE_RULES)
def test_service_rules(rule: str) -> None:
    accept, refuse, field, words = SERVICE_RULES[rule]
    good, bad = _service(), _service()
    accept(good)
    admission.check_service(good)
    refuse(bad)
    with pytest.raises(admission.Refused) as refused:
        admission.check_service(bad)
    env_index = len(_template(bad)["spec"]["containers"][0]["env"]) - 1
    assert refused.value.field == field.format(i=env_index)
    assert words in str(refused.value)


def test_service_limits_follow_the_clusters_config_defaults() -> None:
    obj = _service()
    _template(obj)["spec"].update(timeoutSeconds=900, containerConcurrency=2000)
    admission.check_service(obj, admission.Limits(max_revision_timeout_seconds=900,
                                                  container_concurrency_max_limit=5000))
    with pytest.raises(admission.Refused, match="expected 0 <= 2000 <= 1000"):
        admission.check_service(obj)
    _template(obj)["spec"].update(containerConcurrency=10)
    with pytest.raises(admission.Refused, match="expected 0 <= 900 <= 600"):
        admission.check_service(obj)


def test_pars_own_service_passes() -> None:
    admission.check_service(_service())


def _trigger(**delivery: object) -> Obj:
    spec = TriggerSpec(namespace="team-a", name="orders", filters={"type": "order.created"},
                       subscriber_agent="shop", delivery=dict(delivery))
    return manifests.trigger(spec)


def _filter_key(key: str) -> Callable[[Obj], None]:
    return lambda o: o["spec"].update(filter={"attributes": {key: "x"}})


def _delivery(**fields: object) -> Callable[[Obj], None]:
    return lambda o: o["spec"].update(delivery=fields)


TRIGGER_RULES = {
    "attribute names lowercase alphanumeric": (
        _filter_key("type"), _filter_key("Type"), "spec.filter.attributes.Type", "invalid key name",
    ),
    "attribute names start with a letter": (
        _filter_key("x1"), _filter_key("1x"), "spec.filter.attributes.1x", "invalid key name",
    ),
    "attribute names have no punctuation": (
        _filter_key("source"), _filter_key("source-id"), "spec.filter.attributes.source-id",
        "invalid key name",
    ),
    "dialect attribute names too": (
        lambda o: o["spec"].update(filters=[{"prefix": {"type": "order."}}]),
        lambda o: o["spec"].update(filters=[{"prefix": {"Type": "order."}}]),
        "spec.filters[0].prefix.Type", "invalid key name",
    ),
    "retry non-negative": (
        _delivery(retry=0), _delivery(retry=-1), "spec.delivery.retry", "non-negative",
    ),
    "backoffPolicy linear or exponential": (
        _delivery(backoffPolicy="linear"), _delivery(backoffPolicy="fast"), "spec.delivery.backoffPolicy",
        "linear or exponential",
    ),
    "backoffDelay ISO-8601": (
        _delivery(backoffDelay="PT0.5S"), _delivery(backoffDelay="5s"), "spec.delivery.backoffDelay",
        "ISO-8601",
    ),
    "timeout ISO-8601": (
        _delivery(timeout="PT10S"), _delivery(timeout="ten seconds"), "spec.delivery.timeout", "ISO-8601",
    ),
    "dead-letter sink is a URL or a ref": (
        _delivery(deadLetterSink={"uri": "http://dlq.example.com"}), _delivery(deadLetterSink={"uri": "dlq"}),
        "spec.delivery.deadLetterSink.uri", "absolute http(s) URL",
    ),
    "a broker is named": (
        lambda o: o["spec"].update(broker="default"), lambda o: o["spec"].update(broker=""), "spec.broker",
        "required",
    ),
    "name is a DNS-1123 label": (
        lambda o: o["metadata"].update(name="orders-2"), lambda o: o["metadata"].update(name="Orders"),
        "metadata.name", "DNS-1123",
    ),
    "ordering ordered or unordered": (
        lambda o: o["metadata"].update(annotations={manifests.ORDERING_ANNOTATION: "ordered"}),
        lambda o: o["metadata"].update(annotations={manifests.ORDERING_ANNOTATION: "sorted"}),
        f"metadata.annotations.{manifests.ORDERING_ANNOTATION}", "ordered or unordered",
    ),
    "a CESQL filter compiles": (
        lambda o: o["spec"].update(filters=[{"cesql": "type LIKE 'order.%'"}]),
        lambda o: o["spec"].update(filters=[{"cesql": "type LIKE"}]),
        "spec.filters[0].cesql", "column",
    ),
}


@pytest.mark.parametrize("rule", TRIGGER_RULES)
def test_trigger_rules(rule: str) -> None:
    accept, refuse, field, words = TRIGGER_RULES[rule]
    good, bad = _trigger(), _trigger()
    accept(good)
    admission.check_trigger(good)
    refuse(bad)
    with pytest.raises(admission.Refused) as refused:
        admission.check_trigger(bad)
    assert refused.value.field == field
    assert words in str(refused.value)


CLASS = "eventing.knative.dev/broker.class"
BROKER_RULES = {
    "name is a DNS-1123 label": (
        lambda o: o["metadata"].update(name="orders"), lambda o: o["metadata"].update(name="Orders"),
        "metadata.name", "DNS-1123",
    ),
    "class is Kafka": (
        lambda o: o["metadata"]["annotations"].update({CLASS: "KafkaNamespaced"}),
        lambda o: o["metadata"]["annotations"].update({CLASS: "MTChannelBasedBroker"}),
        "metadata.annotations.eventing.knative.dev/broker.class", "not served here",
    ),
    "delivery retry non-negative": (
        lambda o: o["spec"].update(delivery={"retry": 2}), lambda o: o["spec"].update(delivery={"retry": -2}),
        "spec.delivery.retry", "non-negative",
    ),
    "namespace is a DNS-1123 label": (
        lambda o: o["metadata"].update(namespace="team-b"),
        lambda o: o["metadata"].update(namespace="Team B"),
        "metadata.namespace", "DNS-1123",
    ),
}


@pytest.mark.parametrize("rule", BROKER_RULES)
def test_broker_rules(rule: str) -> None:
    accept, refuse, field, words = BROKER_RULES[rule]
    good, bad = copy.deepcopy(manifests.broker("team-a")), copy.deepcopy(manifests.broker("team-a"))
    accept(good)
    admission.check_broker(good)
    refuse(bad)
    with pytest.raises(admission.Refused) as refused:
        admission.check_broker(bad)
    assert refused.value.field == field
    assert words in str(refused.value)
