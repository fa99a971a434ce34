"""PAR's Services are already what Knative's defaulting makes of them, so re-applying one is accepted.

`containers` is an atomic list under server-side apply: a field Knative's webhook defaulted and PAR
left out is removed by PAR's next apply, the template then differs under the same revision name,
and the webhook refuses the update ("Saw the following changes without a name change"). The
defaults are written down as facts in tests/support/knative_defaults.py.
"""

from __future__ import annotations

import copy

import pytest

from registry.knative import manifests
from registry.spec import DeploymentSpec, Scaling, VersionTarget
from tests.support.knative_defaults import FACTS, KNATIVE_SNAPSHOT, knative_defaulted

SHA = "c" * 64


def _spec(**scaling: int | None) -> DeploymentSpec:
    return DeploymentSpec(
        namespace="team-a",
        agent="demo-agent",
        versions=(VersionTarget(version="0.1.0", revision="demo-agent-0-1-0", percent=100, sha256=SHA,
                                artifact_url=f"http://registry/v1/artifacts/{SHA}", tag="v0-1-0"),),
        scaling=Scaling(**scaling),  # type: ignore[arg-type]
    )


def test_the_facts_as_knative_applies_them_to_a_bare_service() -> None:
    assert KNATIVE_SNAPSHOT
    bare = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "hello"},
        "spec": {"template": {"spec": {"containers": [{"image": "example.com/hello", "ports": [
            {"containerPort": 8080}]}]}}},
    }
    spec = knative_defaulted(bare)["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert spec["timeoutSeconds"] == FACTS["revision-timeout-seconds"] == 300
    assert spec["containerConcurrency"] == FACTS["container-concurrency"] == 0
    assert spec["enableServiceLinks"] is FACTS["enable-service-links"] is False
    assert container["name"] == "user-container"
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]  # the CRD's default
    assert container["readinessProbe"] == {"tcpSocket": {}, "successThreshold": 1}
    assert container["resources"] == {"requests": {}, "limits": {}}
    probed = copy.deepcopy(bare)
    container = probed["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"] = {"httpGet": {}, "periodSeconds": 5}
    probe = knative_defaulted(probed)["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    assert probe == {"httpGet": {}, "periodSeconds": 5, "successThreshold": 1, "failureThreshold": 3,
                     "timeoutSeconds": 1}


@pytest.mark.parametrize("secure_pod_defaults", ["disabled", "root-allowed", "enabled"])
@pytest.mark.parametrize("create", [True, False], ids=["create", "update"])
@pytest.mark.parametrize(
    "scaling",
    [{}, {"min_scale": 1, "max_scale": 3, "target": 5, "container_concurrency": 10, "timeout_seconds": 60}],
    ids=["defaults", "tuned"],
)
def test_pars_service_is_what_knative_defaulting_produces(
    scaling: dict[str, int], create: bool, secure_pod_defaults: str
) -> None:
    service = manifests.service(_spec(**scaling))
    assert knative_defaulted(service, create=create, secure_pod_defaults=secure_pod_defaults) == service


def test_a_service_missing_a_defaulted_probe_field_is_caught() -> None:
    """The shape PAR applied before: Knative's defaulting changes it, so a re-apply is refused."""
    service = manifests.service(_spec())
    probe = service["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    del probe["timeoutSeconds"], probe["successThreshold"]
    assert knative_defaulted(service) != service
