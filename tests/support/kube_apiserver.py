"""A real Kubernetes API server for tests: etcd and `kube-apiserver` v1.34, built from the Go module
proxy by `scripts/kube-apiserver.sh` into `.cache/kube/bin/`, run on free loopback ports.

No cluster and no controllers: the server stores, validates against the CRD schemas, prunes,
applies server-side, versions, watches and authorizes (RBAC) exactly as a cluster's API server does.
Set up once per session:
- self-signed serving certificates (`--cert-dir`; the kubeconfigs trust them), a static token file
  with an admin (`system:masters`) and the registry's identity;
- Knative's CRDs from `../shared/knative-crds/` (waited on until Established);
- `knative/registry/namespace.yaml` and `rbac.yaml` exactly as shipped. The registry's token
  authenticates as the ServiceAccount `par-system/par-registry` that the shipped ClusterRoleBinding
  names, so the registry has the shipped verbs and nothing more: a missing verb fails a test.

Knative's controller is played by `set_status`, which writes the status subresource with the admin
credentials (PUT .../status, as Knative's reconcilers do). `restart()` kills and starts the API
server on the same port and etcd (a control-plane crash, as a client sees it).
"""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import require_service
from tests.support.kube_schemas import CRD_DIR
from tests.support.net import free_port

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / ".cache" / "kube" / "bin"
REGISTRY_MANIFESTS = REPO / "knative" / "registry"
REGISTRY_USER = "system:serviceaccount:par-system:par-registry"  # the subject rbac.yaml binds
CONTROLLER = "controller"  # the field manager Knative's controllers write status with


class KubeAPIServer:
    """etcd + kube-apiserver in a temporary folder; `start()`, `restart()`, `stop()`."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="par-kube-"))
        self.etcd_port, self.peer_port, self.port = free_port(), free_port(), free_port()
        self.admin_token, self.registry_token = uuid.uuid4().hex, uuid.uuid4().hex
        self.etcd: subprocess.Popen[bytes] | None = None
        self.apiserver: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        # --cert-dir writes a certificate for the advertise address (127.0.0.1), followed by the CA
        # that signed it: the whole file is what clients trust.
        return self.root / "certs" / "apiserver.crt"

    # --- processes ------------------------------------------------------------------------
    def start(self) -> None:
        self._write_credentials()
        self._start_etcd()
        self.start_apiserver()
        self._bootstrap()

    def _write_credentials(self) -> None:
        (self.root / "tokens.csv").write_text(
            f'{self.admin_token},admin,admin-uid,"system:masters"\n'
            f"{self.registry_token},{REGISTRY_USER},registry-uid,"
            '"system:serviceaccounts,system:serviceaccounts:par-system"\n'
        )
        key = self.root / "sa.key"
        subprocess.run(
            [
                "openssl",
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                str(key),
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(self.root / "sa.pub")],
            check=True,
            capture_output=True,
        )

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        with open(self.root / f"{name}.log", "ab") as log:
            return subprocess.Popen(
                [str(self.bindir / name), *args], stdout=log, stderr=subprocess.STDOUT, cwd=self.root
            )

    def _start_etcd(self) -> None:
        client, peer = f"http://127.0.0.1:{self.etcd_port}", f"http://127.0.0.1:{self.peer_port}"
        self.etcd = self._spawn(
            "etcd",
            [
                "--name=par",
                f"--data-dir={self.root / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=par={peer}",
                "--unsafe-no-fsync",  # test data: durability is not what is under test
                "--log-level=warn",
            ],
        )
        self._wait(f"{client}/health", self.etcd, "etcd", timeout=30)

    def start_apiserver(self, timeout: float = 90.0) -> None:
        self.apiserver = self._spawn(
            "kube-apiserver",
            [
                f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.port}",
                f"--cert-dir={self.root / 'certs'}",
                f"--token-auth-file={self.root / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                "--anonymous-auth=false",
                "--endpoint-reconciler-type=none",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-key-file={self.root / 'sa.pub'}",
                f"--service-account-signing-key-file={self.root / 'sa.key'}",
                # Plugins that depend on controllers which do not run here (token and quota
                # controllers); NamespaceLifecycle stays, so a namespace must exist before use.
                "--disable-admission-plugins=ServiceAccount,ResourceQuota",
                "--shutdown-delay-duration=0s",
                "--profiling=false",
                "--v=0",
            ],
        )
        self._wait(f"{self.url}/readyz", self.apiserver, "kube-apiserver", timeout=timeout)

    def _wait(self, url: str, proc: subprocess.Popen[bytes], name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        headers = {"Authorization": f"Bearer {self.admin_token}"} if url.startswith("https") else {}
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                if httpx.get(url, headers=headers, verify=False, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        tail = (self.root / f"{name}.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{name} did not become ready within {timeout}s:\n{tail}")

    def stop_apiserver(self) -> None:
        """Kill the API server, as a crash: its clients see their connections cut. (A graceful
        SIGTERM with watches open took over 30 s here before it exited.)"""
        if self.apiserver is not None and self.apiserver.poll() is None:
            self.apiserver.kill()
            self.apiserver.wait()
        self.apiserver = None

    def restart(self) -> None:
        """Kill the API server and start it again on the same port, with the same etcd."""
        self.stop_apiserver()
        self.start_apiserver()

    def stop(self) -> None:
        self.stop_apiserver()
        _terminate(self.etcd)
        self.etcd = None
        shutil.rmtree(self.root, ignore_errors=True)

    # --- clients --------------------------------------------------------------------------
    def kubeconfig(self, path: Path, *, admin: bool = False) -> Path:
        """A kubeconfig for the registry's identity (or the admin), trusting the serving cert."""
        user = "admin" if admin else "par-registry"
        token = self.admin_token if admin else self.registry_token
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": user,
            "clusters": [
                {"name": "test", "cluster": {"server": self.url, "certificate-authority": str(self.ca_file)}}
            ],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": user, "context": {"cluster": "test", "user": user}}],
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def client(self) -> httpx.Client:
        """An admin HTTP client (tests use it to play other parties: Knative, kubectl users)."""
        return httpx.Client(
            base_url=self.url,
            verify=ssl.create_default_context(cafile=str(self.ca_file)),
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=30.0,
        )

    def create(self, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        with self.client() as c:
            response = c.post(path, json=obj)
        if response.status_code not in (200, 201, 202, 409):
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text}")
        return dict(response.json())

    def create_namespace(self, name: str | None = None) -> str:
        name = name or f"t-{uuid.uuid4().hex[:10]}"
        self.create(
            "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        )
        return name

    def get(self, api_version: str, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self.client() as c:
            response = c.get(f"/apis/{api_version}/namespaces/{namespace}/{plural}/{name}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return dict(response.json())

    def set_status(
        self, api_version: str, plural: str, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        """Play Knative's controller: PUT the status subresource (observedGeneration = generation),
        retrying on a conflict as its reconcilers do."""
        path = f"/apis/{api_version}/namespaces/{namespace}/{plural}/{name}/status"
        with self.client() as c:
            for _ in range(10):
                current = c.get(path)
                current.raise_for_status()
                obj = current.json()
                obj["status"] = {**status, "observedGeneration": obj["metadata"]["generation"]}
                answer = c.put(path, json=obj, params={"fieldManager": CONTROLLER})
                if answer.status_code != 409:
                    answer.raise_for_status()
                    return dict(answer.json())
        raise RuntimeError(f"status of {path} kept conflicting")

    # --- set-up ---------------------------------------------------------------------------
    def _bootstrap(self) -> None:
        crds = [
            doc
            for path in sorted(CRD_DIR.glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text())
            if doc and doc.get("kind") == "CustomResourceDefinition"
        ]
        for crd in crds:
            self.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        for name in ("namespace.yaml", "rbac.yaml"):
            for doc in yaml.safe_load_all((REGISTRY_MANIFESTS / name).read_text()):
                self.create(_collection(doc), doc)
        deadline = time.monotonic() + 60
        pending = {crd["metadata"]["name"] for crd in crds}
        with self.client() as c:
            while pending and time.monotonic() < deadline:
                for name in sorted(pending):
                    found = c.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}").json()
                    conditions = (found.get("status") or {}).get("conditions") or []
                    if any(x["type"] == "Established" and x["status"] == "True" for x in conditions):
                        pending.discard(name)
                time.sleep(0.1)
        if pending:
            raise RuntimeError(f"CRDs not Established within 60s: {sorted(pending)}")


def _collection(obj: dict[str, Any]) -> str:
    """The collection path of one of the few core/RBAC kinds the registry's manifests hold."""
    plural = {
        "Namespace": "namespaces",
        "ServiceAccount": "serviceaccounts",
        "ClusterRole": "clusterroles",
        "ClusterRoleBinding": "clusterrolebindings",
        "Role": "roles",
        "RoleBinding": "rolebindings",
    }[obj["kind"]]
    version = obj["apiVersion"]
    base = f"/api/{version}" if "/" not in version else f"/apis/{version}"
    namespace = obj["metadata"].get("namespace")
    return f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"


def _terminate(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def built() -> Path | None:
    """The folder with etcd and kube-apiserver when scripts/kube-apiserver.sh has built them."""
    return BIN if all(os.access(BIN / name, os.X_OK) for name in ("etcd", "kube-apiserver")) else None


@pytest.fixture(scope="session")
def kube_apiserver() -> Iterator[KubeAPIServer]:
    bindir = built()
    require_service(
        bindir is not None, "kube-apiserver and etcd (built with Go)", installer="scripts/kube-apiserver.sh"
    )
    assert bindir is not None
    require_service(CRD_DIR.is_dir(), f"Knative's CRDs in {CRD_DIR}")
    server = KubeAPIServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def kube_namespace(kube_apiserver: KubeAPIServer) -> str:
    """A new namespace on the session's API server (namespaces are never deleted: no controller)."""
    return kube_apiserver.create_namespace()
