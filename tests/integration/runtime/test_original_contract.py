"""The original Pixell runtime's contract: a runtime started only with the original's environment
variables answers every route its callers use, in the original's shapes, at the root and under
BASE_PATH."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.runtime.conftest import RuntimeProcess, launch, runtime_env, wait_ready
from tests.support.apkgs import zip_folder
from tests.support.net import free_port

pytestmark = pytest.mark.integration

ORIGINAL = Path(__file__).parent / "legacy" / "original-example"


def start_original(tmp: Path, **env: str) -> RuntimeProcess:
    """`python -m runtime` with no arguments and no PORT: the original's variables only."""
    apkg = zip_folder(ORIGINAL, tmp / "old-agent.apkg")
    rest_port = free_port()
    variables = {
        "AGENT_APP_ID": "a1",
        "AGENT_PACKAGE_PATH": str(apkg),
        "REST_PORT": str(rest_port),
        "A2A_PORT": str(free_port()),
        **env,
    }
    log_path = tmp / "runtime.log"
    proc = launch([], log_path, runtime_env(tmp / "work", **variables), module=True)
    return wait_ready(RuntimeProcess(proc, rest_port, log_path))


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("original")
    server = start_original(tmp, BASE_PATH="agents/a1/", MULTIPLEXED="true", BOOT_BUDGET_MS="1")
    yield server
    assert server.stop() == 0


def get(server: RuntimeProcess, path: str) -> httpx.Response:
    return httpx.get(server.url(path))


def test_agent_health_by_app_id(original: RuntimeProcess) -> None:
    ok = get(original, "/agents/a1/health")
    assert ok.status_code == 200
    assert ok.json() == {"agentId": "a1", "status": "healthy", "loaded": True}
    other = get(original, "/agents/b2/health")
    assert other.status_code == 404
    assert other.json() == {"error": "Agent not found", "agentId": "b2", "loaded": False}


@pytest.mark.parametrize("base", ["", "/agents/a1"])
def test_health_meta_and_surface_health(original: RuntimeProcess, base: str) -> None:
    before = int(time.time() * 1000)
    health = get(original, f"{base}/health" if base == "" else "/health").json()
    assert health["ok"] is True and health["surfaces"] == {"rest": True, "a2a": True, "ui": True}
    assert health["timestamp"] >= before
    meta = get(original, f"{base}/meta").json()
    assert meta["name"] == "example-three-surface-agent" and meta["version"] == "0.1.0"
    assert meta["surfaces"] == {"a2a": True, "rest": True, "ui": True}
    assert meta["sub_agents"] == [
        {"name": "example_agent", "description": "Example agent with three surfaces", "public": True}
    ]
    assert meta["boot_stats"]["total_ms"] > 0
    a2a = get(original, f"{base}/a2a/health")
    assert a2a.status_code == 200 and a2a.json()["ok"] is True and a2a.json()["service"] == "a2a"
    assert get(original, f"{base}/ui/health").json()["ok"] is True
    assert get(original, f"{base}/ui-config.json").json() == {"apiBase": "/agents/a1/api"}


@pytest.mark.parametrize("base", ["", "/agents/a1"])
def test_surfaces_at_the_root_and_under_base_path(original: RuntimeProcess, base: str) -> None:
    assert get(original, f"{base}/api/status").json()["status"] == "running"
    invoked = httpx.post(original.url(f"{base}/invoke"), json={"q": 1}).json()
    assert invoked["agent"] == "example-three-surface-agent"
    body = {"jsonrpc": "2.0", "id": 1, "method": "calculate", "params": {"a": "2", "b": "3"}}
    assert httpx.post(original.url(f"{base}/a2a"), json=body).json()["result"]["result"] == 5.0
    assert "<h1>Example UI</h1>" in get(original, f"{base}/").text
    assert "<h1>Example UI</h1>" in get(original, f"{base}/some/client/route").text  # SPA fallback
    assert get(original, f"{base}/app.js").text.strip() == "console.log(1)"
    card = get(original, f"{base}/.well-known/agent.json").json()
    assert card["url"] == original.url(f"{base}/a2a")


def test_a_slow_boot_is_logged_against_its_budget(original: RuntimeProcess) -> None:
    slow = [line for line in original.log_lines() if line.get("msg") == "boot exceeded its budget"]
    assert slow and slow[0]["budget_ms"] == 1.0


def test_not_multiplexed_serves_the_ui_on_its_own_port(tmp_path: Path) -> None:
    ui_port = free_port()
    server = start_original(tmp_path, MULTIPLEXED="false", UI_PORT=str(ui_port))
    try:
        ui = f"http://127.0.0.1:{ui_port}"
        assert "<h1>Example UI</h1>" in httpx.get(f"{ui}/").text
        assert httpx.get(f"{ui}/health").json() == {"ok": True, "service": "ui", "port": ui_port}
        assert httpx.post(f"{ui}/invoke", json={}).status_code == 405  # only the UI there
        assert get(server, "/api/status").status_code == 200
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("variable", "value"),
    [("BASE_PATH", "/a b"), ("BASE_PATH", "/x//y"), ("REST_PORT", "http"), ("MULTIPLEXED", "maybe")],
)
def test_a_bad_variable_refuses_to_start_naming_it(tmp_path: Path, variable: str, value: str) -> None:
    env = runtime_env(tmp_path, AGENT_PACKAGE_PATH=str(tmp_path / "none.apkg"), **{variable: value})
    done = subprocess.run(
        [sys.executable, "-m", "runtime"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"par runtime: invalid setting {variable}: ")


def test_grpc_agent_service_on_a2a_port(original: RuntimeProcess) -> None:
    """A client generated from the .proto, on the original's A2A_PORT."""
    import grpc

    from runtime.protos import agent_pb2, agent_pb2_grpc

    port = next(line["grpc_port"] for line in original.log_lines() if line.get("msg") == "serving")
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = agent_pb2_grpc.AgentServiceStub(channel)
        health = stub.Health(agent_pb2.Empty(), timeout=10)
        assert health.ok and health.timestamp > 1_700_000_000_000
        assert stub.Ping(agent_pb2.Empty(), timeout=10).message == "pong"
        capabilities = stub.DescribeCapabilities(agent_pb2.Empty(), timeout=10)
        assert list(capabilities.methods) == ["Health", "DescribeCapabilities", "Invoke", "Ping"]
        assert capabilities.metadata["name"] == "example-three-surface-agent"
        parameters = {"a": "2", "b": "3"}
        request = agent_pb2.ActionRequest(action="calculate", parameters=parameters, request_id="r-1")
        result = stub.Invoke(request, timeout=10)
        assert result.success and result.request_id == "r-1" and result.error == ""
        assert json.loads(result.result) == {"operation": "add", "a": 2.0, "b": 3.0, "result": 5.0}
        text = stub.Invoke(agent_pb2.ActionRequest(action="process_data", parameters={"data": "x"}))
        assert text.success and text.result == "Processed data: X"  # a string result as is
        unknown = stub.Invoke(agent_pb2.ActionRequest(action="nope"), timeout=10)
        assert not unknown.success and "No handler found for action: nope" in unknown.error
        assert unknown.request_id.startswith("req_")


def test_the_service_over_http_for_the_local_platform(original: RuntimeProcess) -> None:
    from runtime.protos import agent_pb2

    request = agent_pb2.ActionRequest(action="calculate", parameters={"a": "1", "b": "1"})
    answer = httpx.post(
        original.url("/pixell.agent.AgentService/Invoke"),
        content=request.SerializeToString(),
        headers={"content-type": "application/x-protobuf"},
    )
    assert answer.status_code == 200
    assert json.loads(agent_pb2.ActionResult.FromString(answer.content).result)["result"] == 2.0
    assert httpx.post(original.url("/pixell.agent.AgentService/Nope"), content=b"").status_code == 404


def test_an_explicit_a2a_port_in_use_refuses_to_start(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = runtime_env(
            tmp_path,
            AGENT_PACKAGE_PATH=str(zip_folder(ORIGINAL, tmp_path / "a.apkg")),
            REST_PORT=str(free_port()),
            A2A_PORT=str(port),
        )
        command = [sys.executable, "-m", "runtime"]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 3
    assert f"cannot listen on A2A_PORT {port}" in done.stderr


def test_the_knative_grpc_variant_port_is_grpcs(tmp_path: Path) -> None:
    """`{agent}-grpc` sets A2A_PORT to the container port Knative also passes as PORT."""
    import grpc

    from runtime.protos import agent_pb2, agent_pb2_grpc

    port = free_port()
    server = start_original(tmp_path, PORT=str(port), A2A_PORT=str(port))  # HTTP on REST_PORT
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            assert agent_pb2_grpc.AgentServiceStub(channel).Health(agent_pb2.Empty(), timeout=10).ok
        assert get(server, "/readyz").status_code == 200
    finally:
        server.stop()
