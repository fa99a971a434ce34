"""The cluster path on loopback: a real Envoy programmed as Kourier or Istio programs it, calling
the real `par gateway serve --mode authz` as its ext_authz service, in front of a real agent
runtime (`par runtime serve` of tests/integration/gateway/echo-agent, which answers with what
reached it). Shared by the test_envoy_*.py modules."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.apkgs import build_apkg
from tests.support.envoy import Envoy, cluster, run_envoy, virtual_host
from tests.support.envoy_ingress import (
    istio_ext_authz,
    istio_gateway_env,
    kourier_ext_authz,
    kourier_gateway_env,
)
from tests.support.gateway import PAR, agent, make_key, snapshot
from tests.support.net import free_port, stop_process, wait_http

ECHO_AGENT = Path(__file__).resolve().parents[1] / "integration" / "gateway" / "echo-agent"
AGENT_HOST = "echo-agent.default.127.0.0.1.sslip.io"
# A host Knative would route to the agent (a DomainMapping) that names no agent to the gateway.
MAPPED_HOST = "api.example.test"


@dataclass
class Keys:
    """Real keys in the gateway's policy: allowed, granted elsewhere only, rate limited."""

    ok: str
    elsewhere: str
    limited: str
    records: list[dict] = field(default_factory=list)


def make_keys() -> Keys:
    ok, ok_record = make_key(tenant="acme")
    elsewhere, elsewhere_record = make_key(tenant="globex", grants=["other/*"])
    limited, limited_record = make_key(tenant="initech", rate=0.2, burst=2)
    return Keys(ok, elsewhere, limited, [ok_record, elsewhere_record, limited_record])


class GatewayProcess:
    """`par gateway serve --mode authz` on a fixed port, so a test can stop and restart it."""

    def __init__(self, work: Path, keys: Keys, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.policy = work / "policy.json"
        self.policy.write_text(json.dumps(snapshot(keys.records, [agent("echo-agent")])))
        self.log = work / "gateway.log"
        self.env = {**os.environ, **env}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = ["gateway", "serve", "--mode", "authz", "--port", str(self.port)]
        args += ["--policy-file", str(self.policy)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([PAR, *args], env=self.env, stderr=log, stdout=subprocess.DEVNULL)
        try:
            wait_http(f"{self.url}/readyz", timeout=60)
        except TimeoutError:
            raise RuntimeError(f"gateway did not get ready: {self.log.read_text()[-2000:]}") from None

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        self.proc = None


class AgentProcess:
    """`par runtime serve ECHO.apkg` on a free port."""

    def __init__(self, apkg: Path, work: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in {"AGENT_PACKAGE_PATH", "PACKAGE_URL", "PORT"}}
        env.update(PAR_RUNTIME_WORK_DIR=str(work / "runtime"), PAR_RUNTIME_HOST="127.0.0.1")
        self.log = work / "runtime.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [PAR, "runtime", "serve", str(apkg), "--port", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_http(f"{self.url}/readyz", timeout=120)
        except TimeoutError:
            stop_process(self.proc)
            raise RuntimeError(f"runtime did not get ready: {self.log.read_text()[-2000:]}") from None

    def seen(self) -> dict[str, Any]:
        """What the agent counted, read directly (not through Envoy)."""
        return httpx.get(f"{self.url}/echo-seen", timeout=5).json()

    def stop(self) -> None:
        stop_process(self.proc)


@dataclass
class Stack:
    envoy: Envoy
    gateway: GatewayProcess
    agent: AgentProcess
    keys: Keys
    flavour: str  # which ingress programmed Envoy (a key of INGRESSES)

    def get(self, path: str, key: str | None = None, host: str = AGENT_HOST, **kw: Any) -> httpx.Response:
        headers = {"Host": host, **kw.pop("headers", {})}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return httpx.get(self.envoy.url + path, headers=headers, timeout=10, **kw)


# How each ingress programs Envoy: (filter and cluster from the gateway's port, the gateway's own env,
# KOURIER_EXTAUTHZ_* values a user may add to what PAR ships).
ExtAuthz = Callable[..., tuple[dict[str, Any], dict[str, Any]]]
INGRESSES: dict[str, tuple[ExtAuthz, Callable[[], dict[str, str]], dict[str, str]]] = {
    "kourier": (kourier_ext_authz, kourier_gateway_env, {}),
    "kourier-packasbytes": (kourier_ext_authz, kourier_gateway_env, {"KOURIER_EXTAUTHZ_PACKASBYTES": "true"}),
    "istio": (istio_ext_authz, istio_gateway_env, {}),
}


@contextmanager
def envoy_stack(ingress: str, work: Path) -> Iterator[Stack]:
    """Agent, gateway and an Envoy programmed as `ingress` (a key of INGRESSES) programs it."""
    ext_authz, gateway_env, ext_authz_overrides = INGRESSES[ingress]
    apkg = build_apkg(ECHO_AGENT, work / "apkg", tool="sdk")
    keys = make_keys()
    agent_process = AgentProcess(apkg, work)
    gateway = GatewayProcess(work, keys, {"PAR_GATEWAY_LOG_LEVEL": "INFO", **gateway_env()})
    try:
        gateway.start()
        authz_filter, authz_cluster = ext_authz(gateway.port, **ext_authz_overrides)
        hosts = [virtual_host("agent", [AGENT_HOST], "agent"), virtual_host("mapped", [MAPPED_HOST], "agent")]
        with run_envoy(
            work,
            http_filters=[authz_filter],
            clusters=[authz_cluster, cluster("agent", agent_process.port)],
            virtual_hosts=hosts,
        ) as envoy:
            yield Stack(envoy, gateway, agent_process, keys, ingress)
    finally:
        gateway.stop()
        agent_process.stop()
