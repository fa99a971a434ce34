"""A deployment's requests/limits: defaulted as Kubernetes defaults a pod, refused where Kubernetes
or the platform's maximum would refuse them, and carried into the Knative Service."""

from __future__ import annotations

import pytest

from registry.knative import manifests, resources
from registry.spec import DeploymentSpec, Resources, VersionTarget
from tests.support.kube_schemas import as_pod, validate_core, validate_knative

DEFAULTS = Resources(requests={"cpu": "100m", "memory": "256Mi"}, limits={"cpu": "1", "memory": "1Gi"})
MAXIMUM = {"cpu": "4", "memory": "4Gi"}


def test_asked_values_win_and_the_rest_are_the_defaults() -> None:
    asked = Resources(limits={"memory": "512Mi", "cpu": "500m"}, requests={"cpu": "200m"})
    assert resources.resolve(asked, DEFAULTS) == Resources(
        requests={"cpu": "200m", "memory": "256Mi"}, limits={"cpu": "500m", "memory": "512Mi"}
    )


def test_a_limit_alone_under_the_default_request_brings_the_request_down_as_kubernetes_does() -> None:
    resolved = resources.resolve(Resources(limits={"memory": "128Mi"}), DEFAULTS)
    assert resolved.requests["memory"] == "128Mi" and resolved.limits["memory"] == "128Mi"


def test_a_request_alone_over_the_default_limit_raises_the_limit() -> None:
    resolved = resources.resolve(Resources(requests={"cpu": "2"}), DEFAULTS)
    assert resolved.requests["cpu"] == "2" and resolved.limits["cpu"] == "2"


def test_over_the_platform_maximum_is_refused_naming_the_field() -> None:
    with pytest.raises(resources.Refused) as refused:
        resources.check(Resources(limits={"memory": "8Gi"}), DEFAULTS, MAXIMUM)
    assert refused.value.field == "resources.limits.memory" and refused.value.code == "resources_over_maximum"
    assert "PAR_MAX_MEMORY_LIMIT" in refused.value.message
    with pytest.raises(resources.Refused) as refused:
        resources.check(Resources(requests={"cpu": "4500m"}), DEFAULTS, MAXIMUM)
    assert refused.value.field == "resources.requests.cpu"


def test_a_request_above_its_limit_is_refused_in_kubernetes_words() -> None:
    asked = Resources(requests={"cpu": "2"}, limits={"cpu": "1"})
    with pytest.raises(resources.Refused) as refused:
        resources.check(asked, DEFAULTS, MAXIMUM)
    assert refused.value.code == "request_over_limit"
    assert refused.value.message == 'Invalid value: "2": must be less than or equal to cpu limit of 1'


def test_merged_keeps_what_is_not_named_and_none_removes() -> None:
    stored = {"limits": {"memory": "256Mi", "cpu": "500m"}, "requests": {"cpu": "100m"}}
    assert resources.merged(stored, {"limits": {"memory": "1Gi"}, "requests": {"cpu": None}}) == {
        "limits": {"memory": "1Gi", "cpu": "500m"}
    }


def test_the_service_carries_the_resolved_resources_and_validates() -> None:
    sha = "a" * 64
    spec = DeploymentSpec(
        namespace="team-a", agent="nosy-agent",
        versions=(VersionTarget(version="0.1.0", revision="nosy-agent-0-1-0", percent=100, sha256=sha,
                                artifact_url=f"http://registry/v1/artifacts/{sha}", tag="v0-1-0"),),
        resources=Resources(limits={"memory": "256Mi", "cpu": "500m"}, requests={"memory": "128Mi"}),
    )
    service = manifests.service(spec)
    container = service["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}
    }
    validate_knative(service)
    validate_core(as_pod(service))
    plain = manifests.service(spec.model_copy(update={"resources": Resources()}))
    assert plain["spec"]["template"]["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}
    }
