"""The `par` registry commands as a user runs them (subprocesses against a real registry server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from registry.settings import RegistrySettings
from tests.support.kube_schemas import validate_knative
from tests.support.registry import RunningRegistry, run_registry

pytestmark = pytest.mark.integration
PAR = [sys.executable, "-c", "from cli.main import main; main()"]


@pytest.fixture
def cli_registry(tmp_path: Path) -> Iterator[RunningRegistry]:
    with run_registry(RegistrySettings(data_dir=tmp_path / "reg")) as running:
        yield running


def par(registry: RunningRegistry | None, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAR_")}
    if registry is not None:
        env.update(PAR_REGISTRY_URL=registry.url, PAR_API_KEY=registry.admin_key)
    result = subprocess.run([*PAR, *args], env=env, capture_output=True, text=True, timeout=120, check=False)
    if check:
        assert result.returncode == 0, result.stderr + result.stdout
    return result


def test_deploy_list_get_traffic_rollback(
    cli_registry: RunningRegistry, demo_apkg_kit: Path, demo_apkg_v2: Path
) -> None:
    first = par(cli_registry, "deploy", str(demo_apkg_kit), "--max-scale", "3", "--concurrency", "4")
    assert "demo-agent 0.1.0 is ready at http://demo-agent.default.example.com" in first.stdout
    assert "Ready: True" in first.stderr  # progress is shown while following the rollout
    par(cli_registry, "deploy", str(demo_apkg_v2))
    listed = json.loads(par(cli_registry, "agents", "list", "-o", "json").stdout)
    assert [(a["name"], a["latest_version"], a["status"]["phase"]) for a in listed] == [
        ("demo-agent", "0.2.0", "ready")
    ]
    table = par(cli_registry, "agents", "list").stdout
    assert "demo-agent" in table and "http://demo-agent.default.example.com" in table
    got = yaml.safe_load(par(cli_registry, "agents", "get", "demo-agent", "-o", "yaml").stdout)
    assert got["deployment"]["max_scale"] == 3 and got["deployment"]["container_concurrency"] == 4
    versions = json.loads(par(cli_registry, "versions", "demo-agent", "-o", "json").stdout)
    assert [v["version"] for v in versions] == ["0.1.0", "0.2.0"]
    split = json.loads(
        par(cli_registry, "traffic", "demo-agent", "0.1.0=90", "0.2.0=10", "-o", "json").stdout
    )
    assert [(t["version"], t["percent"]) for t in split["traffic"]] == [("0.1.0", 90), ("0.2.0", 10)]
    assert [t["tag"] for t in split["traffic"]] == ["v0-1-0", "v0-2-0"]  # the tags Knative is given
    shown = par(cli_registry, "agents", "get", "demo-agent").stdout
    assert "v0-1-0" in shown and "v0-2-0" in shown  # the TAG column is filled
    bad = par(cli_registry, "traffic", "demo-agent", "0.1.0=90", "0.2.0=20", check=False)
    assert bad.returncode == 1 and "sum to 100" in bad.stderr
    back = json.loads(par(cli_registry, "rollback", "demo-agent", "-o", "json").stdout)
    assert [(t["version"], t["percent"]) for t in back["traffic"]] == [("0.2.0", 100)]
    policy = json.loads(
        par(
            cli_registry,
            "agents",
            "update",
            "demo-agent",
            "--public",
            "--rate",
            "2.5",
            "--burst",
            "5",
            "-o",
            "json",
        ).stdout
    )
    assert (policy["public"], policy["rate"], policy["burst"]) == (True, 2.5, 5)
    cleared = json.loads(
        par(cli_registry, "agents", "update", "demo-agent", "--clear-limits", "-o", "json").stdout
    )
    assert (cleared["public"], cleared["rate"], cleared["burst"]) == (True, None, None)
    par(cli_registry, "agents", "delete", "demo-agent")
    missing = par(cli_registry, "agents", "get", "demo-agent", check=False)
    assert missing.returncode == 1 and "not found" in missing.stderr.lower()


def test_deploy_with_kn_style_limits_and_requests(cli_registry: RunningRegistry, demo_apkg_kit: Path) -> None:
    deployed = par(cli_registry, "deploy", str(demo_apkg_kit), "--limit", "memory=256Mi,cpu=500m",
                   "--request", "memory=128Mi", "--request", "cpu=100m")
    assert "is ready" in deployed.stdout
    got = yaml.safe_load(par(cli_registry, "agents", "get", "demo-agent", "-o", "yaml").stdout)
    assert got["deployment"]["resources"] == {
        "limits": {"memory": "256Mi", "cpu": "500m"}, "requests": {"memory": "128Mi", "cpu": "100m"}
    }
    table = par(cli_registry, "agents", "get", "demo-agent").stdout
    assert "resources: requests cpu=100m, memory=128Mi; limits cpu=500m, memory=256Mi" in table
    # `memory-` unsets, as with kn; the cpu limit is kept.
    par(cli_registry, "deploy", str(demo_apkg_kit), "--limit", "memory-")
    got = yaml.safe_load(par(cli_registry, "agents", "get", "demo-agent", "-o", "yaml").stdout)
    assert got["deployment"]["resources"]["limits"] == {"cpu": "500m"}
    too_much = par(cli_registry, "deploy", str(demo_apkg_kit), "--limit", "memory=64Gi", check=False)
    assert too_much.returncode == 1
    last = too_much.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: ") and "resources.limits.memory" in last
    assert "PAR_MAX_MEMORY_LIMIT" in too_much.stderr and "Traceback" not in too_much.stderr
    bad = par(cli_registry, "deploy", str(demo_apkg_kit), "--limit", "disk=1Gi", check=False)
    assert bad.returncode == 2 and "resources are cpu and memory" in bad.stderr


def test_bad_package_and_unreachable_registry(cli_registry: RunningRegistry, tmp_path: Path) -> None:
    junk = tmp_path / "junk.apkg"
    junk.write_bytes(b"not a zip")
    result = par(cli_registry, "deploy", str(junk), check=False)
    assert result.returncode == 1 and "Invalid package" in result.stderr and "not a ZIP" in result.stderr
    down = subprocess.run(
        [*PAR, "agents", "list"],
        env={**os.environ, "PAR_REGISTRY_URL": "http://127.0.0.1:9", "PAR_API_KEY": "x"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert down.returncode == 1 and "cannot reach the registry" in down.stderr


def test_triggers_and_keys(cli_registry: RunningRegistry) -> None:
    created = par(
        cli_registry,
        "trigger",
        "create",
        "on-order",
        "--broker",
        "default",
        "--filter",
        "type=order.created",
        "--sink",
        "ksvc:demo-agent",
        "--retry",
        "3",
    )
    assert "on-order" in created.stdout
    listed = json.loads(par(cli_registry, "trigger", "list", "-o", "json").stdout)
    assert listed[0]["filters"] == {"type": "order.created"} and listed[0]["sink_agent"] == "demo-agent"
    assert listed[0]["delivery"] == {"retry": 3}
    par(cli_registry, "trigger", "delete", "on-order")
    assert json.loads(par(cli_registry, "trigger", "list", "-o", "json").stdout) == []

    key = par(cli_registry, "keys", "create", "--tenant", "team-a", "--rate", "5", "--burst", "10").stdout
    secret = key.strip().splitlines()[-1]
    assert secret.startswith("par_")
    keys = json.loads(par(cli_registry, "keys", "list", "-o", "json").stdout)
    mine = next(k for k in keys if secret.startswith(f"par_{k['id']}_"))
    assert (mine["tenant"], mine["grants"], mine["rate"], mine["burst"]) == ("team-a", ["team-a/*"], 5.0, 10)
    assert "key" not in mine
    par(cli_registry, "keys", "revoke", mine["id"])
    keys = json.loads(par(cli_registry, "keys", "list", "-o", "json").stdout)
    assert next(k for k in keys if k["id"] == mine["id"])["revoked"] is True


def test_manifests_offline_for_a_package(demo_apkg_kit: Path, tmp_path: Path) -> None:
    out = par(
        None, "manifests", str(demo_apkg_kit), "--max-scale", "4", "--image", "example.org/par-runtime:test"
    )
    objects = list(yaml.safe_load_all(out.stdout))
    assert [o["kind"] for o in objects] == ["Service"]  # applies without Knative Eventing
    for obj in objects:
        validate_knative(obj)
    container = objects[0]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert container["image"] == "example.org/par-runtime:test"
    assert env["PACKAGE_URL"].endswith(f"/v1/artifacts/{env['PACKAGE_SHA256']}")
    assert (
        objects[0]["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/max-scale"] == "4"
    )
    junk = tmp_path / "junk.apkg"
    junk.write_bytes(b"nope")
    bad = par(None, "manifests", str(junk), check=False)
    assert bad.returncode == 1 and "not_a_zip" in bad.stderr


def _offline_revision(apkg: Path, *flags: str) -> tuple[str, str]:
    objects = list(yaml.safe_load_all(par(None, "manifests", str(apkg), *flags).stdout))
    service = next(o for o in objects if o["kind"] == "Service")
    return service["spec"]["template"]["metadata"]["name"], service["spec"]["traffic"][0]["revisionName"]


def test_offline_manifests_name_a_new_revision_whenever_the_template_changes(demo_apkg_kit: Path) -> None:
    """Knative refuses a changed template under an existing revision name ("Saw the following
    changes without a name change"): re-applying the version with another max-scale or K_SINK
    must name another revision; the same settings, or a visibility change, the same one."""
    first = _offline_revision(demo_apkg_kit, "--max-scale", "3")
    assert first[0] == first[1] and first[0].startswith("demo-agent-0-1-0-")
    assert _offline_revision(demo_apkg_kit, "--max-scale", "3") == first
    assert _offline_revision(demo_apkg_kit, "--max-scale", "4")[0] != first[0]
    assert _offline_revision(demo_apkg_kit, "--max-scale", "3", "--broker", "orders")[0] != first[0]
    assert _offline_revision(demo_apkg_kit, "--max-scale", "3", "--cluster-local") == first


def test_agents_show_the_serving_version_not_the_latest_upload(
    cli_registry: RunningRegistry, demo_apkg_kit: Path, demo_apkg_v2: Path
) -> None:
    par(cli_registry, "deploy", str(demo_apkg_kit))
    par(cli_registry, "deploy", str(demo_apkg_v2))
    par(cli_registry, "traffic", "demo-agent", "0.1.0=100")  # all traffic back on 0.1.0
    for command in (("agents", "list"), ("agents", "get", "demo-agent")):
        got = json.loads(par(cli_registry, *command, "-o", "json").stdout)
        agent = got[0] if isinstance(got, list) else got
        assert agent["latest_version"] == "0.2.0"
        assert agent["serving"] == [{"version": "0.1.0", "percent": 100}]
        table = par(cli_registry, *command).stdout.splitlines()
        header, row = table[0].split(), next(line for line in table if "demo-agent" in line).split()
        assert row[header.index("VERSION")] == "0.1.0" and row[header.index("LATEST")] == "0.2.0"
    par(cli_registry, "traffic", "demo-agent", "0.1.0=90", "0.2.0=10")
    split = json.loads(par(cli_registry, "agents", "get", "demo-agent", "-o", "json").stdout)
    assert split["serving"] == [{"version": "0.1.0", "percent": 90}, {"version": "0.2.0", "percent": 10}]


def test_deploy_without_a_broker(cli_registry: RunningRegistry, demo_apkg_kit: Path) -> None:
    """`par deploy` had no way to deploy without a broker (a cluster without Knative Eventing)."""
    assert "is ready" in par(cli_registry, "deploy", str(demo_apkg_kit), "--no-broker").stdout
    got = json.loads(par(cli_registry, "agents", "get", "demo-agent", "-o", "json").stdout)
    assert got["deployment"]["broker"] is None
    par(cli_registry, "deploy", str(demo_apkg_kit), "--broker", "orders")
    got = json.loads(par(cli_registry, "agents", "get", "demo-agent", "-o", "json").stdout)
    assert got["deployment"]["broker"] == "orders"
