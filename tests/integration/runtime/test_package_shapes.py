"""Every package shape the original runtime and the Pixell tools produce loads unchanged: real
`pixell build` output of pixell-kit 0.4 and pixell-sdk 0.5, and hand-zipped flat packages."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from runtime.apkg import validate
from tests.integration.runtime.conftest import RuntimeProcess, run_par, serve_project
from tests.support.apkgs import build_apkg, zip_folder

pytestmark = pytest.mark.integration

LEGACY = Path(__file__).parent / "legacy"


def rpc(server: RuntimeProcess, method: str, params: object) -> dict:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return httpx.post(server.url("/a2a"), json=body).json()


@pytest.fixture(scope="module", params=["kit", "sdk"])
def kit_legacy(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    server = serve_project(LEGACY / "kit-legacy", request.param, tmp_path_factory)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def kit_stub(tmp_path_factory: pytest.TempPathFactory):
    server = serve_project(LEGACY / "kit-stub", "kit", tmp_path_factory)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sdk_shapes(tmp_path_factory: pytest.TempPathFactory):
    server = serve_project(LEGACY / "sdk-shapes", "sdk", tmp_path_factory)
    yield server
    server.stop()


def test_layouts_are_told_apart(tmp_path: Path) -> None:
    assert validate(build_apkg(LEGACY / "kit-legacy", tmp_path, tool="kit")).layout == "kit"
    assert validate(build_apkg(LEGACY / "kit-legacy", tmp_path / "s", tool="sdk")).layout == "sdk"
    flat = validate(zip_folder(LEGACY / "original-example", tmp_path / "flat.apkg"))
    assert flat.layout == "flat" and flat.manifest.version == "0.1.0"


def test_a2a_object_with_custom_handlers_sync_and_async(kit_legacy: RuntimeProcess) -> None:
    assert rpc(kit_legacy, "calculate", {"a": 2, "b": "3"})["result"] == {"result": 5.0}
    assert rpc(kit_legacy, "shout", {"text": "hey"})["result"] == "HEY"
    failed = rpc(kit_legacy, "fail", {})["error"]
    assert failed["code"] == -32603 and "it broke" in failed["message"]


def test_rest_mount_written_for_the_originals_router(kit_legacy: RuntimeProcess) -> None:
    assert httpx.get(kit_legacy.url("/api/status")).json() == {"status": "running", "tags": []}
    assert httpx.post(kit_legacy.url("/api/echo"), json={"a": 1}).json() == {"echo": {"a": 1}}
    assert httpx.post(kit_legacy.url("/invoke"), json={"x": 1}).json() == {"handled": {"x": 1}}


def test_pixell_init_a2a_stub_and_a_mount_returning_a_router(kit_stub: RuntimeProcess) -> None:
    assert httpx.get(kit_stub.url("/api/ping")).json() == {"pong": True}
    assert httpx.get(kit_stub.url("/.well-known/agent.json")).json()["skills"] == []
    assert httpx.post(kit_stub.url("/invoke"), json={}).json() == {"stub": True}


def test_sdk_agent_server_factory_and_handler_maps(sdk_shapes: RuntimeProcess) -> None:
    assert httpx.get(sdk_shapes.url("/hello")).json() == {"from": "http_server"}
    assert rpc(sdk_shapes, "reverse", {"text": "abc"})["result"] == {"reversed": "cba"}
    skills = {s["id"] for s in httpx.get(sdk_shapes.url("/.well-known/agent.json")).json()["skills"]}
    assert skills == {"reverse", "wait", "count", "explode"}


def test_a_broken_http_server_is_refused_naming_the_cause(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "agent.yaml").write_text("name: broken\nversion: 1.0.0\nhttp_server: web:app\n")
    (folder / "web.py").write_text("app = 42\n")
    result = run_par(["runtime", "serve", str(zip_folder(folder, tmp_path / "broken.apkg"))], tmp_path)
    assert result.returncode == 2
    assert "http_server is a int: not an ASGI app" in result.stderr
