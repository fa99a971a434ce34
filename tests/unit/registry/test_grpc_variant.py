"""`par manifests PATH.apkg --grpc`: the `{agent}-grpc` Knative Service for callers of the original
runtime's gRPC service - valid against Knative's CRDs and webhook rules, one h2c port."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from registry.knative import admission
from registry.knative.grpc_variant import GRPC_PORT, grpc_service
from registry.settings import RegistrySettings
from tests.support.apkgs import zip_folder
from tests.support.kube_schemas import as_pod, validate_core, validate_knative
from tests.unit.registry.test_manifests import _spec

ORIGINAL = Path(__file__).parents[2] / "integration" / "runtime" / "legacy" / "original-example"


def test_one_h2c_port_that_is_the_runtimes_a2a_port() -> None:
    service = grpc_service(_spec())
    validate_knative(service)
    validate_core(as_pod(service))
    admission.check([service], admission.limits_from(RegistrySettings()))
    assert service["metadata"]["name"] == "demo-agent-grpc"
    template = service["spec"]["template"]
    assert template["metadata"]["name"] == "demo-agent-grpc-0-2-0"
    assert [t["revisionName"] for t in service["spec"]["traffic"]] == [
        "demo-agent-grpc-0-1-0",
        "demo-agent-grpc-0-2-0",
    ]
    container = template["spec"]["containers"][0]
    assert container["ports"] == [{"name": "h2c", "containerPort": GRPC_PORT, "protocol": "TCP"}]
    assert {"name": "A2A_PORT", "value": str(GRPC_PORT)} in container["env"]
    assert container["readinessProbe"]["tcpSocket"] == {"port": GRPC_PORT}
    assert template["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"] == "0"


def test_par_manifests_grpc_prints_both_services(tmp_path: Path) -> None:
    from cli.app import app

    apkg = zip_folder(ORIGINAL, tmp_path / "old-agent.apkg")
    result = CliRunner().invoke(app, ["manifests", str(apkg), "--grpc", "--broker", ""])
    assert result.exit_code == 0, result.output
    services = [d for d in yaml.safe_load_all(result.output) if d and d["kind"] == "Service"]
    assert [s["metadata"]["name"] for s in services] == [
        "example-three-surface-agent",
        "example-three-surface-agent-grpc",
    ]
    refused = CliRunner().invoke(app, ["manifests", "some-agent", "--grpc"])
    assert refused.exit_code != 0 and "--grpc needs a package file" in refused.output
