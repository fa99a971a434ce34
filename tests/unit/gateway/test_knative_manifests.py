"""The knative/gateway manifests: core objects valid for Kubernetes, env the gateway understands,
and the two sides of each ext_authz wiring agreeing with each other."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gateway.settings import GatewaySettings
from tests.support.kube_schemas import validate_core

ROOT = Path(__file__).resolve().parents[3] / "knative" / "gateway"
KOURIER_ENV = {
    "KOURIER_EXTAUTHZ_HOST",
    "KOURIER_EXTAUTHZ_PROTOCOL",
    "KOURIER_EXTAUTHZ_FAILUREMODEALLOW",
    "KOURIER_EXTAUTHZ_MAXREQUESTBYTES",
    "KOURIER_EXTAUTHZ_TIMEOUT",
    "KOURIER_EXTAUTHZ_PATHPREFIX",
    "KOURIER_EXTAUTHZ_PACKASBYTES",
}


def load(relative: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((ROOT / relative).read_text()) if doc]


def env_of(deployment: dict) -> dict[str, dict]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {item["name"]: item for item in container["env"]}


def settings_env_names() -> set[str]:
    names = set()
    for name, field in GatewaySettings.model_fields.items():
        alias = field.validation_alias
        names |= set(alias.choices) if alias is not None else {f"PAR_GATEWAY_{name.upper()}"}
    return names


@pytest.mark.parametrize("name", ["namespace.yaml", "deployment.yaml", "service.yaml"])
def test_base_objects_are_valid_kubernetes(name: str) -> None:
    for obj in load(f"base/{name}"):
        validate_core(obj)


def test_every_listed_file_exists() -> None:
    for overlay in ("base", "kourier", "istio"):
        kustomization = load(f"{overlay}/kustomization.yaml")[0]
        for entry in kustomization.get("resources", []):
            assert (ROOT / overlay / entry).exists(), entry
        for patch in kustomization.get("patches", []):
            assert (ROOT / overlay / patch["path"]).exists(), patch


def test_deployment_env_is_understood_by_the_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    (deployment,) = load("base/deployment.yaml")
    env = env_of(deployment)
    unknown = {n for n in env if n.startswith("PAR_") or n == "PORT"} - settings_env_names()
    assert not unknown, f"env the gateway would ignore: {unknown}"
    for name, item in env.items():
        monkeypatch.setenv(name, item.get("value", "from-a-secret"))
    settings = GatewaySettings()
    assert settings.mode == "authz" and settings.host == "0.0.0.0" and settings.port == 8080
    assert settings.ratelimit_backend == "redis" and settings.registry_key == "from-a-secret"


def test_kourier_and_gateway_agree_on_the_path_prefix() -> None:
    (controller_patch,) = load("kourier/net-kourier-controller.patch.yaml")
    (container,) = controller_patch["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "controller"
    kourier = {item["name"]: item["value"] for item in container["env"]}
    assert set(kourier) <= KOURIER_ENV
    assert kourier["KOURIER_EXTAUTHZ_PROTOCOL"] == "http"
    assert kourier["KOURIER_EXTAUTHZ_HOST"].startswith("par-gateway.par-system.")
    (gateway_patch,) = load("kourier/gateway-env.yaml")
    gateway_prefix = env_of(gateway_patch)["KOURIER_EXTAUTHZ_PATHPREFIX"]["value"]
    assert GatewaySettings(path_prefix=gateway_prefix).path_prefix == kourier["KOURIER_EXTAUTHZ_PATHPREFIX"]


def test_istio_policy_names_the_declared_provider_and_passes_identity_headers() -> None:
    (policy,) = load("istio/authorization-policy.yaml")
    (operator,) = load("istio/mesh-config-extension-provider.yaml")
    (provider,) = operator["spec"]["meshConfig"]["extensionProviders"]
    assert policy["spec"]["action"] == "CUSTOM"
    assert policy["spec"]["provider"]["name"] == provider["name"]
    http = provider["envoyExtAuthzHttp"]
    assert {"x-par-tenant", "x-par-key-id", "traceparent"} <= set(http["headersToUpstreamOnAllow"])
    assert {"www-authenticate", "retry-after"} <= set(http["headersToDownstreamOnDeny"])
    assert http["failOpen"] is False
    assert http["statusOnError"] == "503"  # else a failed check (or the gateway's 503) is a bare 403


@pytest.mark.parametrize("overlay", ["base", "kourier", "istio"])
def test_overlays_build_with_kustomize(overlay: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed: kustomize build not checked")
    built = subprocess.run(
        [kubectl, "kustomize", str(ROOT / overlay)], capture_output=True, text=True, check=True
    )
    objects = [doc for doc in yaml.safe_load_all(built.stdout) if doc]
    for obj in objects:
        if obj["apiVersion"] in ("v1", "apps/v1"):
            validate_core(obj)
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    assert deployment["metadata"]["namespace"] == "par-system"
    if overlay == "kourier":
        assert env_of(deployment)["KOURIER_EXTAUTHZ_PATHPREFIX"]["value"] == "/check"


def test_each_ingress_and_the_gateway_agree_on_prefix_and_body_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Envoy forwards at most its buffer of the body (marking it cut only below its 1 MiB
    per-connection buffer): the gateway's limit must be that buffer, and both ingresses must check
    under the prefix the gateway strips."""
    (controller_patch,) = load("kourier/net-kourier-controller.patch.yaml")
    (container,) = controller_patch["spec"]["template"]["spec"]["containers"]
    kourier = {item["name"]: item["value"] for item in container["env"]}
    (operator,) = load("istio/mesh-config-extension-provider.yaml")
    (provider,) = operator["spec"]["meshConfig"]["extensionProviders"]
    istio = provider["envoyExtAuthzHttp"]
    for overlay, prefix, buffered in (
        ("kourier", kourier["KOURIER_EXTAUTHZ_PATHPREFIX"], int(kourier["KOURIER_EXTAUTHZ_MAXREQUESTBYTES"])),
        ("istio", istio["pathPrefix"], istio["includeRequestBodyInCheck"]["maxRequestBytes"]),
    ):
        (patch,) = load(f"{overlay}/gateway-env.yaml")
        with monkeypatch.context() as env:
            for name, item in env_of(patch).items():
                env.setenv(name, item["value"])
            settings = GatewaySettings()
        assert settings.path_prefix == prefix, overlay
        assert settings.max_body_bytes == buffered < 1 << 20, overlay


def test_the_gateway_holds_a_gateway_key_the_registry_installs() -> None:
    """Least privilege (issue 17): the internet-facing gateway reads the snapshot with a key of role
    "gateway" (Secret par-gateway), which the registry installs from the same Secret; it never
    holds the registry's admin key."""
    (deployment,) = load("base/deployment.yaml")
    env = env_of(deployment)
    refs = {n: i["valueFrom"]["secretKeyRef"] for n, i in env.items() if "valueFrom" in i}
    assert all(ref["key"] != "PAR_ADMIN_KEY" and ref["name"] != "par-registry" for ref in refs.values())
    assert refs["PAR_GATEWAY_REGISTRY_KEY"] == {"name": "par-gateway", "key": "PAR_GATEWAY_KEY"}
    registry = yaml.safe_load_all((ROOT.parent / "registry" / "registry.yaml").read_text())
    (reg,) = [o for o in registry if o and o["kind"] == "Deployment"]
    (container,) = reg["spec"]["template"]["spec"]["containers"]
    installed = {e["name"]: e for e in container["env"]}["PAR_GATEWAY_KEY"]["valueFrom"]["secretKeyRef"]
    assert installed == {"name": "par-gateway", "key": "PAR_GATEWAY_KEY"}
