"""scripts/cluster/manifests/par/: the overlays install_par (scripts/cluster.sh) applies are the
folders users apply, plus only what the one-node cluster needs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.dockerfile import ROOT
from tests.support.kube_schemas import validate_core

_BUILT = ROOT / ".cache" / "cluster" / "bin" / "kubectl"
KUBECTL = str(_BUILT) if _BUILT.is_file() else shutil.which("kubectl")
OVERLAYS = ROOT / "scripts" / "cluster" / "manifests" / "par"
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")


def _build(folder: Path) -> list[dict[str, Any]]:
    assert KUBECTL is not None
    built = subprocess.run([KUBECTL, "kustomize", str(folder)], capture_output=True, text=True, timeout=60)
    assert built.returncode == 0, built.stderr
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


def _key(obj: dict[str, Any]) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def _images(objects: list[dict[str, Any]]) -> set[str]:
    return {
        c["image"]
        for o in objects
        if o["kind"] in ("Deployment", "StatefulSet")
        for c in o["spec"]["template"]["spec"]["containers"]
    }


@pytest.mark.parametrize("name", ["dev", "registry", "gateway"])
def test_overlay_builds_and_validates(name: str) -> None:
    for obj in _build(OVERLAYS / name):
        validate_core(obj)


def test_dev_is_knative_dev_with_images_built_here() -> None:
    upstream, overlay = _build(ROOT / "knative" / "dev"), _build(OVERLAYS / "dev")
    assert {_key(o) for o in overlay} == {_key(o) for o in upstream}
    assert _images(overlay) == {
        "dev.local/par-dev/postgres:15-bookworm",
        "dev.local/par-dev/redis:7.0-bookworm",
    }
    script = (ROOT / "scripts" / "cluster.sh").read_text()
    for image in _images(overlay):  # the images install_par builds
        assert image in script
    for name in ("postgres", "redis"):
        assert (ROOT / "scripts" / "cluster" / "images" / name / "Containerfile").is_file()


def test_registry_is_knative_registry_minus_eventing_plus_a_nodeport() -> None:
    upstream, overlay = _build(ROOT / "knative" / "registry"), _build(OVERLAYS / "registry")
    dropped = {_key(o) for o in upstream} - {_key(o) for o in overlay}
    added = [o for o in overlay if _key(o) not in {_key(u) for u in upstream}]
    assert dropped == {("ConfigMap", "knative-eventing", "kafka-broker-config")}
    assert [_key(o) for o in added] == [("Service", "par-system", "par-registry-nodeport")]
    nodeport = added[0]
    deployment = next(o for o in overlay if _key(o) == ("Deployment", "par-system", "par-registry"))
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert nodeport["spec"]["selector"].items() <= labels.items()
    port = re.search(
        r"REGISTRY_PORT=\$\{PAR_CLUSTER_REGISTRY_PORT:-(\d+)\}", (ROOT / "scripts" / "cluster.sh").read_text()
    )
    assert port and nodeport["spec"]["ports"][0]["nodePort"] == int(port.group(1))
    # Everything else as users apply it (install_par sets the images and PAR_RUNTIME_IMAGE on top).
    same = {_key(o): o for o in upstream if _key(o) not in dropped}
    assert all(same[_key(o)] == o for o in overlay if _key(o) in same)


def test_gateway_is_knative_gateway_kourier_with_one_replica() -> None:
    upstream, overlay = _build(ROOT / "knative" / "gateway" / "kourier"), _build(OVERLAYS / "gateway")
    assert {_key(o) for o in overlay} == {_key(o) for o in upstream}
    for obj in upstream:
        if obj["kind"] == "Deployment":
            obj["spec"]["replicas"] = 1
    assert sorted(overlay, key=_key) == sorted(upstream, key=_key)
