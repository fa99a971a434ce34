"""knative/registry/ (the registry on Kubernetes) is valid for the Kubernetes API and consistent."""

from __future__ import annotations

from pathlib import Path

import yaml

from registry.knative import manifests
from tests.support.kube_schemas import validate_core

FOLDER = Path(__file__).resolve().parents[3] / "knative" / "registry"


def _objects() -> list[dict]:
    kustomization = yaml.safe_load((FOLDER / "kustomization.yaml").read_text())
    return [
        doc for name in kustomization["resources"] for doc in yaml.safe_load_all((FOLDER / name).read_text())
    ]


def test_every_object_validates_against_kubernetes_schemas() -> None:
    objects = _objects()
    assert {o["kind"] for o in objects} >= {"Deployment", "Service", "ClusterRole", "ConfigMap"}
    for obj in objects:
        validate_core(obj)


def test_the_registry_may_do_what_the_knative_backend_does() -> None:
    role = next(o for o in _objects() if o["kind"] == "ClusterRole")
    granted = {
        (g, r): set(rule["verbs"])
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
    }
    needed = {"get", "watch", "patch", "delete"}  # server-side apply is a patch; watch lists
    for api_version, kind in (
        (manifests.SERVING, "services"),
        (manifests.EVENTING, "brokers"),
        (manifests.EVENTING, "triggers"),
    ):
        assert needed <= granted[(api_version.split("/")[0], kind)]


def test_the_broker_config_the_manifests_name_exists() -> None:
    config = next(o for o in _objects() if o["kind"] == "ConfigMap")
    ref = manifests.broker("default")["spec"]["config"]
    assert (config["metadata"]["name"], config["metadata"]["namespace"]) == (ref["name"], ref["namespace"])
    assert config["data"]["bootstrap.servers"]
