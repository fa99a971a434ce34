"""The registry's Knative backend against a REAL cluster: the registry that `scripts/cluster.sh up`
installs in the one-node Knative (knative/registry, PostgreSQL of knative/dev), driven through its
HTTP API (fixture `par_cluster`). An uploaded package deployed with PUT .../deployment becomes a
Ready Knative Service whose pods fetch the package from the registry's in-cluster Service; DELETE
removes it.

Triggers are not exercised here: this cluster has no Knative Eventing yet (its Kafka broker needs
Strimzi Kafka); tests/integration/registry covers them against the real CRD schemas.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.cluster import KnativeCluster, knative_cluster, par_cluster  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NAMESPACE = "par-e2e-api"


def test_deploy_ready_and_undeploy(par_cluster: KnativeCluster, demo_apkg_kit: Path) -> None:  # noqa: F811
    cluster = par_cluster
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    headers = {"Authorization": f"Bearer {cluster.api_key}"}
    agent = f"/v1/namespaces/{NAMESPACE}/agents/{name}"
    with httpx.Client(base_url=cluster.registry_url, headers=headers, timeout=60) as c:
        with demo_apkg_kit.open("rb") as fh:
            uploaded = c.post(
                f"/v1/namespaces/{NAMESPACE}/packages", files={"file": ("a.apkg", fh)}, data={"name": name}
            )
        assert uploaded.status_code == 201, uploaded.text
        try:
            deployed = c.put(f"{agent}/deployment", json={"broker": None})
            assert deployed.status_code == 200, deployed.text
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                status = c.get(agent).json()["status"]
                if status["phase"] in ("ready", "failed"):
                    break
                time.sleep(1)
            assert status["phase"] == "ready", status
            assert status["url"] and name in status["url"]
            ksvc = cluster.get("ksvc", name, "-n", NAMESPACE)
            conditions = {c["type"]: c["status"] for c in ksvc["status"]["conditions"]}
            assert conditions.get("Ready") == "True", conditions
        finally:
            assert c.delete(agent).status_code in (200, 204)
    gone = time.monotonic() + 60
    while cluster.get("ksvc", "-n", NAMESPACE, "--field-selector", f"metadata.name={name}")["items"]:
        assert time.monotonic() < gone, "the Knative Service outlived its agent"
        time.sleep(1)
