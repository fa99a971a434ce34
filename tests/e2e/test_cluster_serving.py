"""Knative Serving for real, on the one-node cluster `scripts/cluster.sh up` starts on this machine:
a Knative Service of the tiny dev.local/par-test/hello image becomes Ready, answers 200 through
Kourier at PAR_INGRESS with its Host header, scales to zero (no pod left) once idle, and answers 200
again from zero through the activator (a cold start).

scripts/cluster.sh shortens Knative's scale-to-zero windows (stable-window and
scale-to-zero-grace-period 6 s), so the whole test takes well under a minute on a running cluster.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.cluster import HELLO_IMAGE, KnativeCluster, knative_cluster  # noqa: F401 (fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NAMESPACE = "par-e2e"
T = TypeVar("T")


def _until(what: str, limit: float, probe: Callable[[], T]) -> tuple[T, float]:
    """Poll `probe` until it returns something truthy: that value and the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if value := probe():
            return value, time.monotonic() - start
        time.sleep(0.1)
    pytest.fail(f"{what}: not within {limit:.0f} s")


def _hello_service(name: str) -> dict:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "image": HELLO_IMAGE,
                            "ports": [{"containerPort": 8080}],
                            "env": [{"name": "TARGET", "value": name}],
                        }
                    ]
                }
            }
        },
    }


def _ready_url(cluster: KnativeCluster, name: str) -> str:
    """The Service's URL once it is Ready, "" before."""
    status = cluster.get("ksvc", name, "-n", NAMESPACE).get("status", {})
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))
    return str(status.get("url", "")) if ready else ""


def _pods(cluster: KnativeCluster, name: str) -> list[dict]:
    return cluster.get("pods", "-n", NAMESPACE, "-l", f"serving.knative.dev/service={name}")["items"]


def test_hello_ready_answers_scales_to_zero_and_cold_starts(
    knative_cluster: KnativeCluster,  # noqa: F811
    demo_apkg_kit: Path,
) -> None:
    cluster = knative_cluster
    name = f"hello-{uuid.uuid4().hex[:6]}"
    cluster.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}])
    applied = time.monotonic()
    cluster.apply([_hello_service(name)])
    # With PAR installed its gateway (Kourier's ext_authz) admits only agents it knows, with a key.
    cluster.register(NAMESPACE, name, demo_apkg_kit)
    try:
        url, ready = _until("Service Ready", 120, lambda: _ready_url(cluster, name))
        host = urlsplit(url).hostname or ""
        assert host.startswith(f"{name}.{NAMESPACE}."), url
        with httpx.Client(
            base_url=cluster.ingress, headers={"Host": host, **cluster.auth}, timeout=30
        ) as client:
            # Kourier answers 404 until its gateway has the route; Ready means it has, but be lenient.
            _, first = _until("200 through Kourier", 30, lambda: client.get("/").status_code == 200)
            answer = client.get("/")
            assert answer.status_code == 200 and answer.text == f"hello {name}\n"
            warm = []
            for _ in range(20):
                start = time.perf_counter()
                assert client.get("/").status_code == 200
                warm.append(time.perf_counter() - start)

            # Idle: the autoscaler scales the revision to zero after the stable window and grace period,
            # then the pod terminates (queue-proxy drains first).
            _, to_zero = _until("no pod left after scale to zero", 180, lambda: not _pods(cluster, name))

            start = time.perf_counter()
            cold = client.get("/")
            cold_s = time.perf_counter() - start
            assert cold.status_code == 200 and cold.text == f"hello {name}\n"
        warm.sort()
        print(
            f"\nRevision Ready {ready:.1f} s after apply; first 200 after {first:.2f} s more; "
            f"warm median {warm[len(warm) // 2] * 1000:.1f} ms; "
            f"no pod {to_zero:.0f} s after the last request; "
            f"cold request {cold_s:.2f} s (total {time.monotonic() - applied:.0f} s)"
        )
    finally:
        cluster.kubectl("delete", "ksvc", name, "-n", NAMESPACE, "--ignore-not-found", "--wait=false")
        cluster.forget(NAMESPACE, name)
