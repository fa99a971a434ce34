"""Every kustomization under knative/ builds with kubectl's kustomize, and what it builds is
valid: Knative kinds against Knative's CRD schemas, core kinds against Kubernetes' own."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.dockerfile import ROOT
from tests.support.kube_schemas import crd_schemas, validate_core, validate_knative

KUBECTL = shutil.which("kubectl")
FOLDERS = sorted(p.parent.relative_to(ROOT) for p in (ROOT / "knative").rglob("kustomization.yaml"))
CORE_GROUPS = {"v1", "apps/v1", "rbac.authorization.k8s.io/v1", "networking.k8s.io/v1"}


def test_the_cluster_kustomizations_are_all_found() -> None:
    expected = {
        "knative/eventing", "knative/dev", "knative/registry", "knative/tenant/base", "knative/tenant/istio"
    }
    assert {Path(folder) for folder in expected} <= set(FOLDERS)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
@pytest.mark.parametrize("folder", FOLDERS, ids=str)
def test_kustomization_builds_and_its_objects_validate(folder: Path) -> None:
    assert KUBECTL is not None
    built = subprocess.run(
        [KUBECTL, "kustomize", str(ROOT / folder)], capture_output=True, text=True, timeout=60
    )
    assert built.returncode == 0, built.stderr
    objects = [doc for doc in yaml.safe_load_all(built.stdout) if doc]
    assert objects
    for obj in objects:
        if (obj["apiVersion"], obj["kind"]) in crd_schemas():
            validate_knative(obj)
        elif obj["apiVersion"] in CORE_GROUPS:
            validate_core(obj)
