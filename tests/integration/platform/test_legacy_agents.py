"""Agents of the original runtime on `par up`: its gRPC service through the platform's gRPC way in
(scale from zero included), and `par migrate` moving a folder of old packages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from runtime.protos import agent_pb2, agent_pb2_grpc
from tests.support.apkgs import build_apkg, zip_folder
from tests.support.platform import ParUp

pytestmark = pytest.mark.integration

LEGACY = Path(__file__).parents[1] / "runtime" / "legacy"


def grpc_address(platform: ParUp) -> str:
    for line in platform.output().splitlines():
        if line.startswith("{") and (entry := json.loads(line)).get("part") == "grpc":
            return entry["address"]
    raise AssertionError(f"par up logged no gRPC address:\n{platform.output()[-2000:]}")


def test_grpc_reaches_an_agent_from_zero(platform: ParUp, tmp_path: Path) -> None:
    deployed = platform.deploy(zip_folder(LEGACY / "original-example", tmp_path / "old-agent.apkg"))
    assert "scaled to zero" in deployed["status"]["message"]
    with grpc.insecure_channel(grpc_address(platform)) as channel:
        stub = agent_pb2_grpc.AgentServiceStub(channel)
        metadata = [("x-par-agent", "default/example-three-surface-agent")]
        request = agent_pb2.ActionRequest(action="calculate", parameters={"a": "2", "b": "3"})
        result = stub.Invoke(request, metadata=metadata, timeout=60)
        assert result.success and json.loads(result.result)["result"] == 5.0
        assert stub.Health(agent_pb2.Empty(), metadata=[("x-par-agent", "example-three-surface-agent")]).ok
        with pytest.raises(grpc.RpcError) as missing:
            stub.Ping(agent_pb2.Empty(), metadata=[("x-par-agent", "no-such-agent")], timeout=10)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as unnamed:
            stub.Ping(agent_pb2.Empty(), timeout=10)
        assert unnamed.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture(scope="module")
def old_agents(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fleet as a team has it: the original's flat example, kit 0.4 and sdk 0.5 builds, a package
    whose manifest is invalid and one whose code cannot even be imported."""
    folder = tmp_path_factory.mktemp("old-agents")
    zip_folder(LEGACY / "original-example", folder / "old-agent.apkg")
    build_apkg(LEGACY / "kit-legacy", folder / "kit", tool="kit")
    build_apkg(LEGACY / "sdk-shapes", folder / "sdk", tool="sdk")
    work = tmp_path_factory.mktemp("bad")
    (work / "no-version").mkdir()
    (work / "no-version" / "agent.yaml").write_text("name: no-version\nentrypoint: main:handler\n")
    (work / "no-version" / "main.py").write_text("def handler(c):\n    return c\n")
    zip_folder(work / "no-version", folder / "no-version.apkg")
    (work / "crashes").mkdir()
    (work / "crashes" / "agent.yaml").write_text("name: crashes\nversion: 1.0.0\nentrypoint: main:handler\n")
    crash = "raise ImportError('missing secret')\n\n\ndef handler(c):\n    return c\n"
    (work / "crashes" / "main.py").write_text(crash)
    zip_folder(work / "crashes", folder / "crashes.apkg")
    return folder


def par_migrate(platform: ParUp, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**platform.env, "PAR_DATA_DIR": str(platform.data_dir), "COLUMNS": "200"}
    command = [sys.executable, "-c", "from cli.main import main; main()", "migrate", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)


def test_par_migrate_a_folder_of_old_agents(platform: ParUp, old_agents: Path, tmp_path: Path) -> None:
    report = tmp_path / "migration.json"
    done = par_migrate(platform, str(old_agents), "--report", str(report), "--keep-base-path")
    assert done.returncode == 1, done.stdout + done.stderr  # two of the five cannot move
    rows = {row["agent"] or Path(row["source"]).name: row for row in json.loads(report.read_text())}
    assert {name: row["result"] for name, row in rows.items()} == {
        "example-three-surface-agent": "migrated",
        "kit-legacy": "migrated",
        "sdk-shapes": "migrated",
        "no-version.apkg": "refused",
        "crashes": "failed",
    }
    original = rows["example-three-surface-agent"]
    assert original["layout"] == "flat" and original["surfaces"] == ["invoke", "rest", "a2a", "ui"]
    expected = {"health", "entrypoint", "rest GET /api/status", "a2a card", "ui"}
    assert {c["check"] for c in original["checks"]} >= expected
    assert rows["kit-legacy"]["layout"] == "kit" and rows["sdk-shapes"]["layout"] == "sdk"
    assert "no agent version" in rows["no-version.apkg"]["cause"]
    assert "missing secret" in rows["crashes"]["cause"]
    for name in ("example-three-surface-agent", "kit-legacy", "sdk-shapes", "crashes"):
        assert name in done.stdout  # the table, one row per package
    # callers of the old shared host keep their paths (--keep-base-path), and its health check
    assert platform.call("kit-legacy", "/agents/kit-legacy/api/status", method="GET").status_code == 200
    health = platform.call("kit-legacy", "/agents/kit-legacy/health", method="GET").json()
    assert health == {"agentId": "kit-legacy", "status": "healthy", "loaded": True}


def test_par_migrate_dry_run_deploys_nothing(platform: ParUp, tmp_path: Path) -> None:
    folder = tmp_path / "dry"
    build_apkg(LEGACY / "kit-stub", folder, tool="kit")
    done = par_migrate(platform, str(folder), "--dry-run")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "kit-stub" in done.stdout and "checked" in done.stdout
    with platform.registry() as registry:
        assert registry.get("/v1/namespaces/default/agents/kit-stub/deployment").status_code == 404
