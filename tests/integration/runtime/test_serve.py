"""`par runtime serve` on the real demo package from both pixell tools: every surface, as a user calls it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_binary, to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from tests.integration.runtime.conftest import RuntimeProcess, start

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["kit", "sdk"])
def demo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    apkg: Path = request.getfixturevalue(f"demo_apkg_{request.param}")
    server = start([str(apkg)], tmp_path_factory.mktemp(f"serve-{request.param}"))
    yield server
    assert server.stop() == 0


def test_acceptance_commands(demo: RuntimeProcess) -> None:
    assert httpx.get(demo.url("/readyz")).status_code == 200
    invoked = httpx.post(demo.url("/invoke"), json={"x": 1})
    assert invoked.status_code == 200
    assert invoked.json() == {"message": "Hello from handler", "received": {"x": 1}}
    assert httpx.get(demo.url("/api/hello")).json() == {"message": "Hello from REST"}


def test_health_has_the_current_runtime_shape(demo: RuntimeProcess) -> None:
    body = httpx.get(demo.url("/health")).json()
    assert body["ok"] is True
    assert body["surfaces"] == {"rest": True, "a2a": True, "ui": True}
    assert isinstance(body["timestamp"], int)  # milliseconds, as the original
    surfaces = httpx.get(demo.url("/meta")).json()["runtime_surfaces"]
    assert surfaces == {"invoke": True, "rest": True, "a2a": True, "http_server": False, "ui": True}
    assert httpx.get(demo.url("/healthz")).json() == {"ok": True}


def test_ui_static_files(demo: RuntimeProcess) -> None:
    page = httpx.get(demo.url("/ui/"))
    assert page.status_code == 200 and "<h1>Demo Agent</h1>" in page.text
    assert "font-family" in httpx.get(demo.url("/ui/style.css")).text
    assert "<h1>Demo Agent</h1>" in httpx.get(demo.url("/")).text  # ui.basePath "/", as the original
    for escape in ("/ui/../agent.yaml", "/ui/%2e%2e/agent.yaml", "/..%2fagent.yaml"):
        assert "demo-agent" not in httpx.get(demo.url(escape)).text  # the SPA index, never the file


def test_environment_layers_of_the_package(demo: RuntimeProcess) -> None:
    # .env says DEMO_GREETING=Hi, agent.yaml (and deploy.json) say Hello; DEMO_SOURCE only in .env
    assert httpx.get(demo.url("/api/greeting")).json() == {"greeting": "Hello", "source": "dotenv"}


def test_a2a_card_and_json_rpc(demo: RuntimeProcess) -> None:
    card = httpx.get(demo.url("/.well-known/agent.json")).json()
    assert card["url"] == demo.url("/a2a")
    assert {s["id"] for s in card["skills"]} == {"greet", "echo"}
    send = {
        "jsonrpc": "2.0",
        "id": "r1",
        "method": "message/send",
        "params": {
            "message": {
                "role": "user",
                "messageId": "m1",
                "contextId": "c1",
                "parts": [{"kind": "data", "data": {"action": "greet", "params": {"name": "Ada"}}}],
            }
        },
    }
    result = httpx.post(demo.url("/a2a"), json=send).json()
    assert result["id"] == "r1"
    task = result["result"]
    assert task["kind"] == "task" and task["status"]["state"] == "completed" and task["contextId"] == "c1"
    assert task["artifacts"][0]["parts"] == [{"kind": "data", "data": {"greeting": "Hello, Ada!"}}]
    assert task["status"]["message"]["role"] == "agent"
    direct = httpx.post(
        demo.url("/a2a"), json={"jsonrpc": "2.0", "id": 2, "method": "echo", "params": {"a": 1}}
    )
    assert direct.json() == {"jsonrpc": "2.0", "id": 2, "result": {"echo": {"a": 1}}}
    unknown = httpx.post(demo.url("/a2a"), json={"jsonrpc": "2.0", "id": 3, "method": "nope"}).json()
    assert unknown["error"]["code"] == -32601
    assert httpx.post(demo.url("/a2a"), content=b"{not json").json()["error"]["code"] == -32700


def _event(event_type: str, data: dict) -> CloudEvent:
    return CloudEvent({"type": event_type, "source": "/tests", "id": "evt-1", "subject": "sub"}, data)


def test_binary_cloudevent_goes_to_the_entrypoint_and_replies(demo: RuntimeProcess) -> None:
    message = to_binary(_event("com.example.order", {"order": 7}), JSONFormat())
    response = httpx.post(demo.url("/"), headers=message.headers, content=message.body)
    assert response.status_code == 200
    reply = from_binary(HTTPMessage(dict(response.headers), response.content), JSONFormat())
    assert reply.get_type() == "com.example.order.reply"
    assert reply.get_source() == "/agents/demo-agent"
    assert reply.get_subject() == "sub"
    assert reply.get_data() == {"message": "Hello from handler", "received": {"order": 7}}


def test_structured_cloudevent_goes_to_the_named_a2a_action(demo: RuntimeProcess) -> None:
    message = to_structured(_event("com.example.greet", {"name": "Lin"}), JSONFormat())
    response = httpx.post(demo.url("/"), headers=message.headers, content=message.body)
    assert response.status_code == 200
    assert json.loads(response.content) == {"greeting": "Hello, Lin!"}
    assert response.headers["ce-type"] == "com.example.greet.reply"


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        (
            {"ce-specversion": "1.0", "ce-source": "/t", "ce-type": "x"},
            b"{}",
            "missing required attribute(s): id",
        ),
        ({"ce-specversion": "1.0", "ce-id": "1", "ce-type": "x"}, b"{}", "source"),
        (
            {"content-type": "application/cloudevents+json"},
            b'{"specversion":"1.0","source":"/t","type":"x"}',
            "id",
        ),
        ({"content-type": "application/json"}, b'{"x":1}', "no ce-* headers"),
        ({"content-type": "application/cloudevents+json"}, b"{broken", "malformed"),
        ({"ce-specversion": "0.3", "ce-id": "1", "ce-source": "/t", "ce-type": "x"}, b"{}", "specversion"),
    ],
)
def test_invalid_cloudevents_get_400_with_the_reason(
    demo: RuntimeProcess, headers: dict, body: bytes, reason: str
) -> None:
    response = httpx.post(demo.url("/"), headers=headers, content=body)
    assert response.status_code == 400
    assert response.json()["code"] == "not_a_cloudevent"
    assert reason in response.json()["detail"]


def test_metrics_and_one_json_log_line_per_request(demo: RuntimeProcess) -> None:
    for _ in range(3):
        httpx.post(demo.url("/invoke"), json={"n": 1})
    metrics = httpx.get(demo.url("/metrics")).text
    assert 'par_runtime_requests_total{method="POST",route="/invoke",status="200"}' in metrics
    assert "par_runtime_request_duration_seconds_bucket" in metrics
    assert "par_runtime_requests_in_flight" in metrics
    lines = [line for line in demo.log_lines() if line.get("msg") == "request" and line["route"] == "/invoke"]
    assert len(lines) >= 3
    assert {"agent", "route", "status", "duration_ms"} <= lines[-1].keys()
    assert lines[-1]["agent"] == "demo-agent" and lines[-1]["status"] == 200
