"""The registry's Knative backend against a REAL cluster with Knative Serving and Eventing.

Runs only when KUBECONFIG names a kubeconfig (e.g. after `scripts/kind-up.sh`); skipped otherwise.
Pods must be able to download the package from the registry this test starts, so set
PAR_PUBLIC_URL to an address of this machine that the cluster reaches (the registry listens on
PAR_E2E_REGISTRY_PORT, default 8097, on all interfaces) and PAR_RUNTIME_IMAGE to a runtime image the
cluster can pull.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

KUBECONFIG = os.environ.get("KUBECONFIG")
needs_cluster = pytest.mark.skipif(
    not (KUBECONFIG and Path(KUBECONFIG).is_file() and os.environ.get("PAR_PUBLIC_URL")),
    reason="needs a Knative cluster: set KUBECONFIG and PAR_PUBLIC_URL (see the module docstring)",
)


@needs_cluster
def test_deploy_ready_trigger_and_undeploy(tmp_path: Path, demo_apkg_kit: Path) -> None:
    from registry.backends.knative import KnativeBackend
    from registry.settings import RegistrySettings
    from tests.support.registry import run_registry

    settings = RegistrySettings(data_dir=tmp_path, deploy_backend="knative")
    port = int(os.environ.get("PAR_E2E_REGISTRY_PORT", "8097"))
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    with (
        run_registry(settings, KnativeBackend.from_settings(settings), host="0.0.0.0", port=port) as registry,
        registry.client() as c,
    ):
        with demo_apkg_kit.open("rb") as fh:
            uploaded = c.post(
                "/v1/namespaces/default/packages", files={"file": ("a.apkg", fh)}, data={"name": name}
            )
        assert uploaded.status_code == 201, uploaded.text
        assert c.put(f"/v1/namespaces/default/agents/{name}/deployment", json={}).status_code == 200
        trigger = {"name": f"{name}-t", "filters": {"type": "e2e.ping"}, "sink_agent": name}
        assert c.post("/v1/namespaces/default/triggers", json=trigger).status_code == 201
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            status = c.get(f"/v1/namespaces/default/agents/{name}").json()["status"]
            if status["phase"] in ("ready", "failed"):
                break
            time.sleep(2)
        try:
            assert status["phase"] == "ready", status
            assert status["url"] and name in status["url"]
        finally:
            c.delete(f"/v1/namespaces/default/triggers/{name}-t")
            c.delete(f"/v1/namespaces/default/agents/{name}")
