"""On a REAL cluster, an agent pod cannot be called directly by another pod: only through the
ingress (Kourier), where the PAR gateway authenticates. The NetworkPolicy the registry applies to
the agent's namespace does it; the cluster's network plugin enforces it (kind's kindnet does from
kind 0.24; scripts/kind-up.sh needs 0.27).

Runs only when KUBECONFIG names a kubeconfig with rights to create namespaces and pods (e.g. after
`scripts/kind-up.sh`) and PAR_PUBLIC_URL is an address of this machine the cluster reaches (see
test_registry_knative.py); skipped otherwise. The probe pod runs the runtime image
(PAR_RUNTIME_IMAGE), which has Python.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

KUBECONFIG = os.environ.get("KUBECONFIG")
needs_cluster = pytest.mark.skipif(
    not (KUBECONFIG and Path(KUBECONFIG).is_file() and os.environ.get("PAR_PUBLIC_URL")),
    reason="needs a Knative cluster: set KUBECONFIG and PAR_PUBLIC_URL (see the module docstring)",
)
# What the probe prints for each URL: the HTTP status, or the network error (a NetworkPolicy
# drops the packets: a timeout).
PROBE = """
import sys, urllib.request, urllib.error
for url in sys.argv[1:]:
    try:
        print(url, urllib.request.urlopen(url, timeout=5).status)
    except urllib.error.HTTPError as exc:
        print(url, exc.code)
    except Exception as exc:
        print(url, "refused", type(exc).__name__)
"""


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(2)
    raise TimeoutError(f"{what} within {timeout}s")


@needs_cluster
def test_a_pod_cannot_call_an_agent_pod_directly_only_through_the_ingress(
    tmp_path: Path, demo_apkg_kit: Path
) -> None:
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    from registry.backends.knative import KnativeBackend
    from registry.settings import RegistrySettings
    from tests.support.registry import run_registry

    api = k8s_config.new_client_from_config(config_file=KUBECONFIG)
    core = k8s.CoreV1Api(api)
    namespace, name = f"e2e-{uuid.uuid4().hex[:6]}", "fenced"
    core.create_namespace({"metadata": {"name": namespace}})
    settings = RegistrySettings(data_dir=tmp_path, deploy_backend="knative")
    port = int(os.environ.get("PAR_E2E_REGISTRY_PORT", "8097"))
    backend = KnativeBackend.from_settings(settings)
    try:
        with (
            run_registry(settings, backend, host="0.0.0.0", port=port) as registry,
            registry.client() as c,
        ):
            with demo_apkg_kit.open("rb") as fh:
                uploaded = c.post(f"/v1/namespaces/{namespace}/packages", files={"file": ("a.apkg", fh)},
                                  data={"name": name})
            assert uploaded.status_code == 201, uploaded.text
            deployed = c.put(f"/v1/namespaces/{namespace}/agents/{name}/deployment", json={"min_scale": 1})
            assert deployed.status_code == 200, deployed.text

            def ready() -> bool:
                status = c.get(f"/v1/namespaces/{namespace}/agents/{name}").json()["status"]
                assert status["phase"] != "failed", status
                return bool(status["phase"] == "ready")

            _wait(ready, 300, f"{namespace}/{name} ready")
            pods = core.list_namespaced_pod(namespace, label_selector=f"serving.knative.dev/service={name}")
            pod_ip = next(p.status.pod_ip for p in pods.items if p.status.pod_ip)
            direct = [f"http://{pod_ip}:8012/health", f"http://{pod_ip}:8080/health"]  # queue-proxy, runtime
            via_ingress = f"http://{name}.{namespace}.svc.cluster.local/health"  # -> Kourier
            # A neighbour in the agent's own namespace: the closest a misbehaving pod can get.
            probe = {
                "metadata": {"name": "probe"},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{
                        "name": "probe", "image": settings.runtime_image,
                        "command": ["python", "-c", PROBE, *direct, via_ingress],
                        "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}},
                    }],
                },
            }
            core.create_namespaced_pod(namespace, probe)

            def finished() -> bool:
                phase = core.read_namespaced_pod("probe", namespace).status.phase
                return phase in ("Succeeded", "Failed")

            _wait(finished, 180, "the probe pod")
            answers = dict(
                line.split(" ", 1) for line in core.read_namespaced_pod_log("probe", namespace).splitlines()
            )
            for url in direct:
                assert answers[url].startswith("refused"), answers
            assert answers[via_ingress][:1].isdigit(), answers  # the ingress answers (200, or 401)
            c.delete(f"/v1/namespaces/{namespace}/agents/{name}")
    finally:
        core.delete_namespace(namespace)
