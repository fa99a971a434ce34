"""A2A protocol 0.3 as the real `a2a-sdk` client (0.3.x) speaks it, plus the mandatory JSON-RPC
errors, against a runtime serving a pixell-sdk 0.5 package with plain and streaming handlers."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types import (
    DataPart,
    Message,
    Part,
    Role,
    Task,
    TaskArtifactUpdateEvent,
    TaskIdParams,
    TaskQueryParams,
    TaskState,
    TaskStatusUpdateEvent,
)

from tests.integration.runtime.conftest import RuntimeProcess, serve_project

pytestmark = pytest.mark.integration

LEGACY = Path(__file__).parent / "legacy"


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory):
    server = serve_project(LEGACY / "sdk-shapes", "sdk", tmp_path_factory)
    yield server
    server.stop()


def message(action: str, **params: object) -> Message:
    data = DataPart(data={"action": action, "params": params})
    return Message(role=Role.user, message_id=str(uuid.uuid4()), parts=[Part(root=data)])


async def client_for(server: RuntimeProcess, http: httpx.AsyncClient, *, streaming: bool):
    card = await A2ACardResolver(http, server.base).get_agent_card()  # /.well-known/agent-card.json
    return ClientFactory(ClientConfig(streaming=streaming, httpx_client=http)).create(card)


def rpc(server: RuntimeProcess, body: object) -> dict:
    return httpx.post(server.url("/a2a"), json=body).json()


async def test_card_and_message_send_return_a_task_tasks_get_honours_history_length(
    agent: RuntimeProcess,
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        card = await A2ACardResolver(http, agent.base).get_agent_card()
        assert card.protocol_version == "0.3.0" and card.capabilities.streaming is True
        client = await client_for(agent, http, streaming=False)
        events = [e async for e in client.send_message(message("reverse", text="abc"))]
        assert len(events) == 1
        task, update = events[0]
        assert isinstance(task, Task) and update is None
        assert task.status.state == TaskState.completed
        assert task.artifacts[0].parts[0].root.data == {"reversed": "cba"}
        assert len(task.history) == 2  # the user's message and the agent's reply
        fetched = await client.get_task(TaskQueryParams(id=task.id, history_length=1))
        assert fetched.status.state == TaskState.completed and len(fetched.history) == 1
        assert fetched.history[0].role == Role.agent


async def test_message_stream_chunks_then_a_final_completed(agent: RuntimeProcess) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        client = await client_for(agent, http, streaming=True)
        events = [e async for e in client.send_message(message("count", n=3))]
    updates = [update for _, update in events]
    assert updates[0] is None  # the Task first
    chunks = [u for u in updates if isinstance(u, TaskArtifactUpdateEvent)]
    assert [c.artifact.parts[0].root.data for c in chunks] == [{"n": 1}, {"n": 2}, {"n": 3}]
    final = updates[-1]
    assert isinstance(final, TaskStatusUpdateEvent) and final.final
    assert final.status.state == TaskState.completed
    task = events[-1][0]
    assert [p.root.data for p in task.artifacts[0].parts] == [{"n": 1}, {"n": 2}, {"n": 3}]


async def test_a_failing_stream_ends_failed(agent: RuntimeProcess) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        client = await client_for(agent, http, streaming=True)
        events = [e async for e in client.send_message(message("explode"))]
    final = events[-1][1]
    assert isinstance(final, TaskStatusUpdateEvent) and final.final
    assert final.status.state == TaskState.failed
    assert "stream broke" in final.status.message.parts[0].root.text


async def test_cancel_a_running_task_then_not_again(agent: RuntimeProcess) -> None:
    send = {
        "jsonrpc": "2.0",
        "id": "s",
        "method": "message/send",
        "params": {
            "message": message("wait", seconds=30).model_dump(mode="json", by_alias=True, exclude_none=True),
            "configuration": {"blocking": False},
        },
    }
    started = rpc(agent, send)["result"]
    assert started["status"]["state"] in ("submitted", "working")
    async with httpx.AsyncClient(timeout=10) as http:
        client = await client_for(agent, http, streaming=False)
        canceled = await client.cancel_task(TaskIdParams(id=started["id"]))
    assert canceled.status.state == TaskState.canceled
    again = rpc(agent, {"jsonrpc": "2.0", "id": 9, "method": "tasks/cancel", "params": {"id": started["id"]}})
    assert again["id"] == 9 and again["error"]["code"] == -32002
    done = rpc(agent, {"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"id": started["id"]}})
    assert done["result"]["status"]["state"] == "canceled"


@pytest.mark.parametrize(
    ("body", "code", "rpc_id"),
    [
        ({"jsonrpc": "2.0", "id": {"x": 1}, "method": "tasks/get", "params": {"id": "t"}}, -32600, None),
        ({"jsonrpc": "2.0", "id": True, "method": "tasks/get"}, -32600, None),
        ({"id": 1, "method": "tasks/get"}, -32600, 1),
        (["not", "an", "object"], -32600, None),
        ({"jsonrpc": "2.0", "id": 2, "method": "tasks/nope"}, -32601, 2),
        ({"jsonrpc": "2.0", "id": 3, "method": "message/send", "params": {}}, -32602, 3),
        ({"jsonrpc": "2.0", "id": 4, "method": "message/send", "params": []}, -32602, 4),
        ({"jsonrpc": "2.0", "id": "5", "method": "tasks/get", "params": {"id": "no-such-task"}}, -32001, "5"),
        ({"jsonrpc": "2.0", "id": 6, "method": "tasks/pushNotificationConfig/set", "params": {}}, -32003, 6),
    ],
)
def test_json_rpc_errors(agent: RuntimeProcess, body: object, code: int, rpc_id: object) -> None:
    answer = rpc(agent, body)
    assert answer["jsonrpc"] == "2.0" and answer["id"] == rpc_id
    assert answer["error"]["code"] == code


def test_parse_error(agent: RuntimeProcess) -> None:
    answer = httpx.post(agent.url("/a2a"), content=b"{not json").json()
    assert answer["error"]["code"] == -32700 and answer["id"] is None
