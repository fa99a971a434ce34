"""The original runtime's settings and its 503 answers while starting (in process, no lifespan)."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from runtime.agent import Agent
from runtime.config import MiB, RuntimeSettings
from runtime.contract import Readiness
from runtime.manifest import AgentManifest
from runtime.prepare import Prepared

ORIGINAL = Path(__file__).parents[2] / "integration" / "runtime" / "legacy" / "original-example"


def test_port_wins_over_rest_port_and_the_originals_size_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REST_PORT", "9001")
    monkeypatch.setenv("MAX_PACKAGE_SIZE_MB", "3")
    settings = RuntimeSettings()
    assert settings.http_port == 9001 and settings.a2a_port == 50051 and settings.multiplexed
    assert settings.max_package_bytes == 3 * MiB
    monkeypatch.setenv("PORT", "8081")
    monkeypatch.setenv("PAR_APKG_MAX_BYTES", "1000")
    settings = RuntimeSettings()
    assert settings.http_port == 8081 and settings.max_package_bytes == 1000


@pytest.mark.parametrize(("raw", "normal"), [("/", "/"), ("agents/a1/", "/agents/a1"), (" /x ", "/x")])
def test_base_path_is_normalised(monkeypatch: pytest.MonkeyPatch, raw: str, normal: str) -> None:
    monkeypatch.setenv("BASE_PATH", raw)
    assert RuntimeSettings().base_path == normal


def test_starting_answers_503_in_the_originals_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime.app import create_app

    manifest = AgentManifest.model_validate(
        {"name": "starting", "version": "1.0.0", "a2a": {"service": "m:f"}, "ui": {"path": "ui"}}
    )
    agent = Agent(prepared=Prepared(app_dir=ORIGINAL, manifest=manifest), ui_dir=ORIGINAL / "ui")
    monkeypatch.setenv("AGENT_APP_ID", "a1")
    client = TestClient(create_app(agent, RuntimeSettings(), Readiness()))  # no `with`: never ready
    health = client.get("/health")
    assert health.status_code == 503
    body = health.json()
    assert body["ok"] is False and body["surfaces"] == {"rest": False, "a2a": False, "ui": False}
    starting = client.get("/agents/a1/health")
    assert starting.status_code == 503
    assert starting.json() == {"agentId": "a1", "status": "starting", "loaded": True}


@pytest.mark.parametrize(
    ("env", "agent_id"),
    [
        ({"AGENT_APP_ID": "team-a/demo", "BASE_PATH": "/agents/team-a/demo"}, "team-a/demo"),
        ({"K_SERVICE": "demo"}, "demo"),
    ],
)
def test_agent_health_answers_par_ids(monkeypatch: pytest.MonkeyPatch, env: dict, agent_id: str) -> None:
    """On Knative AGENT_APP_ID is `{namespace}/{agent}`; on `par up` the agent's K_SERVICE name."""
    from runtime.app import create_app

    manifest = AgentManifest.model_validate({"name": "demo", "version": "1.0.0"})
    agent = Agent(prepared=Prepared(app_dir=ORIGINAL, manifest=manifest))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with TestClient(create_app(agent, RuntimeSettings(), Readiness())) as client:
        healthy = client.get(f"/agents/{agent_id}/health")
        assert healthy.status_code == 200 and healthy.json()["agentId"] == agent_id
        assert client.get("/agents/someone-else/health").status_code == 404


def test_grpcio_loads_only_when_a_grpc_server_starts() -> None:
    """Under Knative no gRPC server runs: a cold start of an a2a package must not pay for grpcio."""
    import subprocess
    import sys

    stub = ORIGINAL.parent / "kit-stub"
    probe = (
        "import sys; from runtime.prepare import load_project; from runtime.agent import load; "
        "from runtime.app import create_app; "
        f"create_app(load(load_project(__import__('pathlib').Path({str(stub)!r})))); "
        "print('grpc' in sys.modules)"
    )
    env = {"K_SERVICE": "kit-stub", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False"
