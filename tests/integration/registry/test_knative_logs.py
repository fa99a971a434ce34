"""`par logs` on Knative against a real kube-apiserver (issue 20 §1): the backend lists the agent's
pods by `serving.knative.dev/service` (and `par.pixell.ai/version`), asks the pod log API for the
agent's container (never queue-proxy) with timestamps, tail and since, with the registry's shipped
RBAC, and follows new pods. There is no kubelet here: the API server forwards each log request to
the pod's node, which this test plays (a Node object whose address is a small HTTPS server that
records what it was asked and answers lines as the kubelet's `/containerLogs` does), so the whole
path API server -> "kubelet" is real except the container runtime behind it."""

from __future__ import annotations

import asyncio
import http.server
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from registry.backends.knative import KnativeBackend
from registry.settings import RegistrySettings
from registry.spec import LogRequest
from tests.support.kube_apiserver import KubeAPIServer

pytestmark = pytest.mark.integration


class FakeKubelet:
    """HTTPS `/containerLogs/{ns}/{pod}/{container}`: two stamped lines, then (follow) holds on."""

    def __init__(self, folder: Path) -> None:
        cert, key = folder / "kubelet.crt", folder / "kubelet.key"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
             "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"],
            check=True, capture_output=True,
        )
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self.stop = threading.Event()
        kubelet = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                kubelet.requests.append((url.path, query))
                pod = url.path.split("/")[3]
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                for n in range(2):
                    self.wfile.write(f"2026-12-06T06:00:0{n}.123456789Z {pod} says {n}\n".encode())
                self.wfile.flush()
                while query.get("follow") == ["true"] and not kubelet.stop.wait(0.2):
                    pass

            def log_message(self, *_: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()


Kubelet = tuple[FakeKubelet, str]  # the fake and its Node's name


@pytest.fixture
def kubelet(kube_apiserver: KubeAPIServer, tmp_path: Path) -> Iterator[Kubelet]:
    fake = FakeKubelet(tmp_path)
    node = f"node-{uuid.uuid4().hex[:8]}"
    with kube_apiserver.client() as admin:
        admin.post("/api/v1/nodes", json={"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}}
                   ).raise_for_status()
        current = admin.get(f"/api/v1/nodes/{node}").json()
        current["status"] = {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                             "daemonEndpoints": {"kubeletEndpoint": {"Port": fake.port}}}
        admin.put(f"/api/v1/nodes/{node}/status", json=current).raise_for_status()
    try:
        yield fake, node
    finally:
        fake.close()
        with kube_apiserver.client() as admin:
            admin.delete(f"/api/v1/nodes/{node}")


@pytest.fixture
def backend(kube_apiserver: KubeAPIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> KnativeBackend:
    monkeypatch.setenv("KUBECONFIG", str(kube_apiserver.kubeconfig(tmp_path / "kubeconfig")))
    return KnativeBackend.from_settings(RegistrySettings(data_dir=tmp_path))


def _pod(kube: KubeAPIServer, ns: str, name: str, agent: str, version: str, node: str) -> None:
    labels = {"serving.knative.dev/service": agent, "par.pixell.ai/version": version,
              "serving.knative.dev/revision": f"{agent}-{version.replace('.', '-')}"}
    containers = [{"name": "runtime", "image": "par-runtime:test"}, {"name": "queue-proxy", "image": "qp"}]
    kube.create(f"/api/v1/namespaces/{ns}/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
        "spec": {"containers": containers, "nodeName": node},
    })


async def test_logs_come_from_the_pod_log_api_of_the_services_pods(
    backend: KnativeBackend, kube_apiserver: KubeAPIServer, kube_namespace: str, kubelet: Kubelet
) -> None:
    fake, node = kubelet
    ns = kube_namespace
    _pod(kube_apiserver, ns, "demo-agent-0-1-0-deployment-a", "demo-agent", "0.1.0", node)
    _pod(kube_apiserver, ns, "demo-agent-0-2-0-deployment-b", "demo-agent", "0.2.0", node)
    _pod(kube_apiserver, ns, "other-0-1-0-deployment-c", "other", "0.1.0", node)

    records = [r async for r in await backend.logs(ns, "demo-agent", LogRequest(tail=3, since_seconds=600))]
    asked = {path: query for path, query in fake.requests}
    assert set(asked) == {f"/containerLogs/{ns}/demo-agent-0-1-0-deployment-a/runtime",
                          f"/containerLogs/{ns}/demo-agent-0-2-0-deployment-b/runtime"}
    for query in asked.values():
        assert (query["timestamps"], query["tailLines"], query["sinceSeconds"]) == (["true"], ["3"], ["600"])
    assert len(records) == 3  # the last three of the four lines, merged by time
    assert records[-1]["line"].endswith("says 1")
    assert {(r["instance"], r["version"]) for r in records} <= {
        ("demo-agent-0-1-0-deployment-a", "0.1.0"), ("demo-agent-0-2-0-deployment-b", "0.2.0")}
    assert all(r["time"].endswith(".123456Z") and r["agent"] == "demo-agent" for r in records)

    fake.requests.clear()
    only = [r async for r in await backend.logs(ns, "demo-agent", LogRequest(version="0.2.0"))]
    assert {r["instance"] for r in only} == {"demo-agent-0-2-0-deployment-b"}
    assert [p for p, _ in fake.requests] == [f"/containerLogs/{ns}/demo-agent-0-2-0-deployment-b/runtime"]


async def test_follow_picks_up_a_pod_started_later(
    backend: KnativeBackend, kube_apiserver: KubeAPIServer, kube_namespace: str, kubelet: Kubelet
) -> None:
    fake, node = kubelet
    ns = kube_namespace
    _pod(kube_apiserver, ns, "demo-agent-first", "demo-agent", "0.1.0", node)
    stream = await backend.logs(ns, "demo-agent", LogRequest(follow=True))
    seen: list[dict[str, Any]] = []

    async def read() -> None:
        async for record in stream:
            seen.append(record)

    reader = asyncio.create_task(read())
    try:
        deadline = time.monotonic() + 20
        while len(seen) < 2:
            assert time.monotonic() < deadline, seen
            await asyncio.sleep(0.1)
        _pod(kube_apiserver, ns, "demo-agent-second", "demo-agent", "0.1.0", node)  # from zero, later
        while {r["instance"] for r in seen} != {"demo-agent-first", "demo-agent-second"}:
            assert time.monotonic() < deadline + 10, seen
            await asyncio.sleep(0.1)
    finally:
        reader.cancel()
    follows = [q for p, q in fake.requests if p.endswith("/demo-agent-second/runtime")]
    assert follows and follows[0]["follow"] == ["true"]
