"""A tenant namespace's fences: what the registry applies is valid for Kubernetes, says what the
issue asks, and is what `knative/tenant/` ships."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from registry.knative import tenancy
from registry.settings import RegistrySettings
from tests.support.kube_schemas import validate_core

ROOT = Path(__file__).resolve().parents[3]
KUBECTL = shutil.which("kubectl")


def _options(**settings: object) -> tenancy.TenantOptions:
    return tenancy.options_from(RegistrySettings(data_dir=Path("/nonexistent"), **settings))  # type: ignore[arg-type]


def test_every_object_validates_against_the_kubernetes_schemas() -> None:
    for obj in tenancy.for_namespace("team-a", _options()):
        assert obj["metadata"]["namespace"] == "team-a"
        validate_core(obj)


def test_agent_pods_admit_only_the_ingress_the_activator_and_the_dispatcher() -> None:
    policy = tenancy.network_policy("team-a", _options())
    assert policy["spec"]["podSelector"] == {} and policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    named, labelled = rule["from"]  # no podSelector of the namespace itself: not even a neighbour agent
    assert set(named) == set(labelled) == {"namespaceSelector"} and "ports" not in rule
    (expression,) = named["namespaceSelector"]["matchExpressions"]
    assert expression["key"] == "kubernetes.io/metadata.name" and expression["operator"] == "In"
    assert expression["values"][:2] == ["kourier-system", "istio-system"]
    assert expression["values"][-2:] == ["knative-serving", "knative-eventing"]
    # Another ingress than Kourier or Istio is not cut off: Contour (net-contour, Gateway API) and
    # Envoy Gateway by default, any other by labelling its namespace.
    assert {"contour-external", "contour-internal", "projectcontour", "envoy-gateway-system"} <= set(
        expression["values"]
    )
    assert labelled["namespaceSelector"] == {"matchLabels": {"par.pixell.ai/ingress": "true"}}


def test_the_admitted_ingress_namespaces_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAR_TENANT_INGRESS_NAMESPACES", "gateway-system,knative-serving")
    monkeypatch.setenv("PAR_TENANT_INGRESS_NAMESPACE_LABELS", "ingress=edge,team=net")
    (rule,) = tenancy.network_policy("t", _options())["spec"]["ingress"]
    named, labelled = rule["from"]
    (expression,) = named["namespaceSelector"]["matchExpressions"]
    assert expression["values"] == ["gateway-system", "knative-serving"]
    assert labelled["namespaceSelector"]["matchLabels"] == {"ingress": "edge", "team": "net"}
    monkeypatch.setenv("PAR_TENANT_INGRESS_NAMESPACE_LABELS", "")
    (rule,) = tenancy.network_policy("t", _options())["spec"]["ingress"]
    assert len(rule["from"]) == 1
    monkeypatch.setenv("PAR_TENANT_INGRESS_NAMESPACES", "")
    assert tenancy.network_policy("t", _options())["spec"]["ingress"] == []  # admits nothing, not all
    monkeypatch.setenv("PAR_TENANT_INGRESS_NAMESPACE_LABELS", "no-value")
    with pytest.raises(ValueError, match="key=value"):
        _options()


def test_quota_and_limit_range_come_from_settings() -> None:
    options = _options(
        tenant_quota={"limits.memory": "8Gi", "pods": "10"}, max_memory_limit="2Gi",
        runtime_memory_limit="512Mi", tenant_ingress_namespaces="kourier-system,knative-serving",
    )
    quota, limits = tenancy.resource_quota("t", options), tenancy.limit_range("t", options)
    assert quota["spec"]["hard"] == {"limits.memory": "8Gi", "pods": "10"}
    (container,) = limits["spec"]["limits"]
    assert container["type"] == "Container"
    assert container["max"] == {"cpu": "4", "memory": "2Gi"} and container["default"]["memory"] == "512Mi"
    assert options.ingress_namespaces == ("kourier-system", "knative-serving")


def test_a_bad_quota_setting_names_the_key() -> None:
    with pytest.raises(ValueError, match=r"limits\.cpu"):
        _options(tenant_quota={"limits.cpu": "lots"})


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_knative_tenant_ships_what_the_registry_applies() -> None:
    assert KUBECTL is not None

    def built(folder: str) -> list[dict]:
        out = subprocess.run([KUBECTL, "kustomize", str(ROOT / folder)], capture_output=True, text=True,
                             timeout=60, check=True).stdout
        return [doc for doc in yaml.safe_load_all(out) if doc]

    shipped = {obj["kind"]: obj for obj in built("knative/tenant/base")}
    assert shipped == {obj["kind"]: obj for obj in tenancy.for_namespace("default", _options())}
    istio = {obj["kind"]: obj for obj in built("knative/tenant/istio")}
    assert istio["PeerAuthentication"]["spec"] == {"mtls": {"mode": "STRICT"}}
    policy = istio["AuthorizationPolicy"]["spec"]
    assert policy["action"] == "ALLOW" and "selector" not in policy
    (rule,) = policy["rules"]
    assert rule["from"][0]["source"]["namespaces"] == ["istio-system", "knative-serving", "knative-eventing"]
