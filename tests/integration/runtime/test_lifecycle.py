"""Failing, slow and shutting-down agents: the server survives, answers on time and drains."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.runtime.conftest import RuntimeProcess, start
from tests.support.apkgs import repack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def testbed(testbed_apkg: Path, tmp_path_factory: pytest.TempPathFactory):
    server = start([str(testbed_apkg)], tmp_path_factory.mktemp("testbed"), PAR_REQUEST_TIMEOUT_SEC="1")
    yield server
    server.stop()


def test_handler_exception_is_a_500_problem_and_the_server_lives_on(testbed: RuntimeProcess) -> None:
    failed = httpx.post(testbed.url("/invoke"), json={"do": "raise"})
    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/problem+json"
    assert failed.json() == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "code": "handler_error",
        "detail": "entrypoint raised: boom from the handler",
        "exception_type": "RuntimeError",
    }
    assert httpx.post(testbed.url("/invoke"), json={"n": 1}).json() == {"echo": {"n": 1}}
    errors = [line for line in testbed.log_lines() if line.get("msg") == "entrypoint raised RuntimeError"]
    assert errors and "boom from the handler" in errors[-1]["exc"]


def test_handler_past_the_request_timeout_gets_504_on_time(testbed: RuntimeProcess) -> None:
    started = time.monotonic()
    slow = httpx.post(testbed.url("/invoke"), json={"do": "sleep", "seconds": 4}, timeout=10)
    assert slow.status_code == 504
    assert slow.json()["code"] == "timeout"
    assert time.monotonic() - started < 3
    assert httpx.get(testbed.url("/readyz")).status_code == 200


def test_async_a2a_action_timeout_and_error_are_json_rpc_errors(testbed: RuntimeProcess) -> None:
    rpc = {"jsonrpc": "2.0", "id": 1}
    assert httpx.post(testbed.url("/a2a"), json=rpc | {"method": "add", "params": {"a": 2, "b": 3}}).json()[
        "result"
    ] == {"sum": 5}
    nap = httpx.post(
        testbed.url("/a2a"), json=rpc | {"method": "nap", "params": {"seconds": 3}}, timeout=10
    ).json()
    assert nap["error"]["code"] == -32603 and nap["error"]["data"]["code"] == "timeout"
    fail = httpx.post(testbed.url("/a2a"), json=rpc | {"method": "fail", "params": {}}).json()
    assert fail["error"]["data"]["code"] == "handler_error"
    assert fail["error"]["data"]["exception_type"] == "ValueError"
    assert fail["error"]["data"]["detail"] == "a2a fail raised: action failed on purpose"


def test_bad_bodies_and_results(testbed: RuntimeProcess) -> None:
    bad = httpx.post(testbed.url("/invoke"), content=b"{nope", headers={"content-type": "application/json"})
    assert bad.status_code == 400 and bad.json()["code"] == "bad_request"
    odd = httpx.post(testbed.url("/invoke"), json={"do": "unserializable"})
    assert odd.status_code == 500 and odd.json()["code"] == "bad_result"
    event = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/t", "ce-type": "com.example.odd"}
    odd_event = httpx.post(testbed.url("/"), headers=event, json={"do": "unserializable"})
    assert odd_event.status_code == 500 and odd_event.json()["code"] == "bad_result"
    failing_event = httpx.post(testbed.url("/"), headers=event, json={"do": "raise"})
    assert failing_event.status_code == 500 and failing_event.json()["code"] == "handler_error"


def test_http_server_app_is_the_catch_all(testbed: RuntimeProcess) -> None:
    assert httpx.get(testbed.url("/web/ping")).json() == {"pong": True, "path": "/web/ping", "started": True}
    assert httpx.get(testbed.url("/readyz")).json() == {"ready": True}
    assert httpx.get(testbed.url("/meta")).json()["runtime_surfaces"]["http_server"] is True


def test_environment_precedence(testbed_apkg: Path, tmp_path: Path) -> None:
    deploy = {"environment": {"LAYER_DEPLOY": "deploy", "LAYER_PROCESS": "deploy"}}
    pkg = repack(testbed_apkg, tmp_path / "env.apkg", replace={"deploy.json": json.dumps(deploy).encode()})
    server = start([str(pkg)], tmp_path, LAYER_PROCESS="process", AGENT_APP_ID="app-123", K_REVISION="rev-7")
    try:
        names = ["LAYER_DOTENV", "LAYER_YAML", "LAYER_DEPLOY", "LAYER_PROCESS"]
        got = httpx.post(server.url("/invoke"), json={"do": "env", "names": names}).json()
        assert got == {
            "LAYER_DOTENV": "dotenv",
            "LAYER_YAML": "yaml",
            "LAYER_DEPLOY": "deploy",
            "LAYER_PROCESS": "process",
        }
        serving = next(line for line in server.log_lines() if line.get("msg") == "serving")
        assert serving["app_id"] == "app-123" and serving["revision"] == "rev-7"
    finally:
        server.stop()


def test_python_m_runtime_reads_the_current_runtime_variables(demo_apkg_kit: Path, tmp_path: Path) -> None:
    server = start([], tmp_path, module=True, port_env=True, AGENT_PACKAGE_PATH=str(demo_apkg_kit))
    try:
        assert httpx.post(server.url("/invoke"), json={"x": 1}).json()["received"] == {"x": 1}
    finally:
        assert server.stop() == 0


def _post_later(url: str, body: dict, out: dict) -> None:
    try:
        out["response"] = httpx.post(url, json=body, timeout=30)
    except httpx.HTTPError as exc:
        out["error"] = exc


def test_sigterm_finishes_in_flight_requests_then_exits_0(testbed_apkg: Path, tmp_path: Path) -> None:
    server = start([str(testbed_apkg)], tmp_path)
    out: dict = {}
    worker = threading.Thread(
        target=_post_later, args=(server.url("/invoke"), {"do": "sleep", "seconds": 2}, out)
    )
    worker.start()
    time.sleep(0.7)
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url("/readyz"), timeout=1)
    assert server.proc.wait(20) == 0
    worker.join(5)
    assert out["response"].status_code == 200 and out["response"].json() == {"slept": 2}


def test_sigterm_stops_waiting_after_the_graceful_timeout(testbed_apkg: Path, tmp_path: Path) -> None:
    server = start([str(testbed_apkg)], tmp_path, GRACEFUL_SHUTDOWN_TIMEOUT_SEC="1")
    out: dict = {}
    worker = threading.Thread(
        target=_post_later, args=(server.url("/invoke"), {"do": "sleep", "seconds": 8}, out)
    )
    worker.start()
    time.sleep(0.7)
    stopped = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(20) == 0
    assert time.monotonic() - stopped < 4
    worker.join(10)
    assert "response" not in out or out["response"].status_code >= 500
