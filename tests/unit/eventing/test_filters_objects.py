"""Trigger filters and Knative object validation (against the real CRD schemas eventing ships)."""

import copy
from pathlib import Path

import pytest

import eventing
from eventing.filters import FilterError, compile_attributes, compile_filters, compile_trigger_filter
from eventing.objects import DeliverySpec, InvalidObject, parse_broker, parse_trigger
from eventing.settings import PACKAGED_CRDS, EventingSettings

CRDS = PACKAGED_CRDS
SHARED_CRDS = Path(__file__).resolve().parents[4] / "shared" / "knative-crds"
EVENT = {"type": "com.shop.order.created", "source": "/shop", "tier": "gold"}


def test_attributes_filter_is_exact_anded_and_empty_matches_any():
    assert compile_attributes({"type": "com.shop.order.created", "source": "/shop"})(EVENT)
    assert not compile_attributes({"type": "com.shop.order", "source": "/shop"})(EVENT)
    assert compile_attributes({"tier": ""})(EVENT)
    assert not compile_attributes({"missing": "x"})(EVENT)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([{"exact": {"tier": "gold"}}], True),
        ([{"prefix": {"type": "com.shop."}}, {"suffix": {"type": ".created"}}], True),
        ([{"suffix": {"missing": "x"}}], False),
        ([{"not": {"prefix": {"source": "/shop"}}}], False),
        ([{"any": [{"exact": {"tier": "silver"}}, {"exact": {"tier": "gold"}}]}], True),
        ([{"all": [{"exact": {"tier": "gold"}}, {"exact": {"source": "/other"}}]}], False),
        ([{"cesql": "tier = 'gold' AND type LIKE '%.created'"}], True),
        ([], True),
    ],
)
def test_new_filters(filters, expected):
    assert compile_filters(filters)(EVENT) is expected


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ([{"exact": {"a": "1", "b": "2"}}], "spec.filters[0].exact"),
        ([{"prefix": {"type": ""}}], "spec.filters[0].prefix.type"),
        ([{"exact": {"a": "1"}, "prefix": {"a": "1"}}], "spec.filters[0]"),
        ([{"regex": {"a": "1"}}], "spec.filters[0]"),
        ([{"any": []}], "spec.filters[0].any"),
        ([{"not": {"all": [{"cesql": "x +"}]}}], "spec.filters[0].not.all[0].cesql"),
    ],
)
def test_filter_errors_name_the_field(filters, field):
    with pytest.raises(FilterError) as info:
        compile_filters(filters)
    assert info.value.field == field


def test_filters_win_over_filter_as_in_knative():
    spec = {"filter": {"attributes": {"tier": "silver"}}, "filters": [{"exact": {"tier": "gold"}}]}
    assert compile_trigger_filter(spec)(EVENT)


TRIGGER = {
    "apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
    "metadata": {"name": "t1", "namespace": "team"},
    "spec": {"broker": "default", "subscriber": {"uri": "http://127.0.0.1:9000/"},
             "delivery": {"retry": 2, "backoffPolicy": "linear", "backoffDelay": "PT0.5S", "timeout": "PT2S",
                          "deadLetterSink": {"uri": "http://127.0.0.1:9001/"}}},
}


def test_trigger_is_read_with_knative_names_and_defaults():
    trigger = parse_trigger(copy.deepcopy(TRIGGER), CRDS)
    assert trigger.group == "knative-trigger-team-t1"
    assert not trigger.ordered and trigger.initial_offset == "latest"
    spec = trigger.delivery_spec(None)
    assert (spec.retry, spec.backoff_policy, spec.backoff_delay, spec.timeout) == (2, "linear", 0.5, 2.0)
    assert spec.dead_letter_sink.url("", "team") == "http://127.0.0.1:9001/"


def test_trigger_delivery_inherits_the_brokers():
    broker = parse_broker({"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
                           "metadata": {"name": "default", "namespace": "team"},
                           "spec": {"delivery": {"retry": 5, "backoffDelay": "PT1S"}}}, CRDS)
    obj = copy.deepcopy(TRIGGER)
    obj["spec"]["delivery"] = {"retry": 1}
    spec = parse_trigger(obj, CRDS).delivery_spec(broker)
    assert (spec.retry, spec.backoff_delay, spec.backoff_policy) == (1, 1.0, "exponential")
    assert broker.topic == "knative-broker-team-default"


def test_backoff_follows_knative_formulas():
    assert [DeliverySpec(backoff_policy="linear", backoff_delay=0.2).backoff(n) for n in (1, 2, 3)] == [
        0.2, 0.4, pytest.approx(0.6)]
    assert [DeliverySpec(backoff_policy="exponential", backoff_delay=0.2).backoff(n) for n in (1, 2, 3)] == [
        0.4, 0.8, 1.6]


def test_service_ref_uses_the_template():
    obj = copy.deepcopy(TRIGGER)
    obj["spec"]["subscriber"] = {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                                         "name": "agent"}, "uri": "/events"}
    subscriber = parse_trigger(obj, CRDS).subscriber
    assert subscriber.url("http://{name}.{namespace}.svc.cluster.local", "team") == (
        "http://agent.team.svc.cluster.local/events")


def test_crd_schema_refusal_names_the_field():
    """With the default settings (an installed `par`, no checkout around it) the schema applies."""
    obj = copy.deepcopy(TRIGGER)
    obj["spec"]["delivery"]["retry"] = "three"
    crds_dir = EventingSettings().crds_dir
    assert crds_dir.is_relative_to(Path(eventing.__file__).parent)  # package data, not ../shared
    with pytest.raises(InvalidObject) as info:
        parse_trigger(obj, crds_dir)
    assert info.value.field == "spec.delivery.retry"


@pytest.mark.parametrize("name", ["eventing_broker.yaml", "eventing_trigger.yaml"])
def test_packaged_crds_are_knatives_unmodified(name):
    if not SHARED_CRDS.is_dir():
        pytest.skip("../shared/knative-crds not beside this checkout")
    assert (PACKAGED_CRDS / name).read_bytes() == (SHARED_CRDS / name).read_bytes()


@pytest.mark.parametrize(
    ("annotation", "field"),
    [("Kafka", None), ("MTChannelBasedBroker", "metadata.annotations.eventing.knative.dev/broker.class")],
)
def test_broker_class(annotation, field):
    obj = {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
           "metadata": {"name": "b", "annotations": {"eventing.knative.dev/broker.class": annotation}}}
    if field is None:
        assert parse_broker(obj, CRDS).namespace == "default"
    else:
        with pytest.raises(InvalidObject) as info:
            parse_broker(obj, CRDS)
        assert info.value.field == field


def test_path_and_object_names_must_agree():
    with pytest.raises(InvalidObject) as info:
        parse_trigger(copy.deepcopy(TRIGGER), CRDS, namespace="team", name="other")
    assert info.value.field == "metadata.name"
