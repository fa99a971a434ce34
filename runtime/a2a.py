"""A2A protocol 0.3 over JSON-RPC 2.0 (`POST /a2a`) onto the package's a2a handlers.

Methods: `message/send` (answers a Task: completed or failed when blocking, the default; submitted
with `configuration.blocking: false`, then run in the background), `message/stream` (server-sent
events: the Task, artifact updates - one per chunk of a streaming handler - and a final status
update), `tasks/get` (with `historyLength`), `tasks/cancel`, `tasks/resubscribe`; push
notifications and the authenticated extended card are not offered (-32003, -32007). Any custom
handler's name is also a method, called directly with `params` (the original runtime's shortcut).

Which handler a message runs: `metadata.action` (or the original's `metadata.skill`, with
`metadata.params`), or the `action` key of the first data part (whose `params` key, else the rest
of the part, is the params). Without an action the message goes to the entrypoint (context: the
data part, or `{"text": ...}`). Tasks live in the instance (`runtime.tasks`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from runtime.agent import Agent
from runtime.invoke import HandlerFailed, call
from runtime.tasks import Task, TaskStore, agent_message, new_id, parts_of

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = (
    -32700,
    -32600,
    -32601,
    -32602,
    -32603,
)
TASK_NOT_FOUND, TASK_NOT_CANCELABLE, PUSH_NOT_SUPPORTED, UNSUPPORTED = -32001, -32002, -32003, -32004
NO_EXTENDED_CARD = -32007
A2A_METHODS = ("message/send", "message/stream", "tasks/get", "tasks/cancel", "tasks/resubscribe")
Emit = Callable[[dict[str, Any]], Awaitable[None]]


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def error(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            body["data"] = self.data
        return body


def agent_card(agent: Agent, base_url: str) -> dict[str, Any]:
    """The A2A agent card (`/.well-known/agent-card.json`): one skill per handler."""
    manifest = agent.prepared.manifest
    return {
        "protocolVersion": "0.3.0",
        "name": manifest.display_name or manifest.name,
        "description": manifest.description or "",
        "version": manifest.version,
        "url": f"{base_url.rstrip('/')}/a2a",
        "preferredTransport": "JSONRPC",
        "capabilities": {"streaming": True, "pushNotifications": False, "stateTransitionHistory": False},
        "defaultInputModes": ["application/json", "text/plain"],
        "defaultOutputModes": ["application/json", "text/plain"],
        "skills": [
            {"id": name, "name": name, "description": (fn.__doc__ or "").strip(), "tags": []}
            for name, fn in sorted({**agent.a2a_handlers, **agent.a2a_streams}.items())
        ],
    }


@dataclass
class Call:
    """What one message runs: a handler (or a streaming handler) and its argument."""

    fn: Callable[..., Any]
    argument: Any
    what: str
    streaming: bool = False


class A2AServer:
    """The JSON-RPC methods for one agent, with its task store."""

    def __init__(self, agent: Agent, time_limit: float, store: TaskStore | None = None) -> None:
        self.agent, self.time_limit, self.store = agent, time_limit, store or TaskStore()

    async def respond(self, request: Any) -> dict[str, Any] | AsyncIterator[dict[str, Any]]:
        """A JSON-RPC response object, or (message/stream, tasks/resubscribe) an iterator of them."""
        rpc_id = None
        try:
            rpc_id = _request_id(request)
            method, params = _method(request)
            if method in ("message/stream", "tasks/resubscribe"):
                events = self._stream(params) if method == "message/stream" else self._resubscribe(params)
                return _responses(rpc_id, events)
            return {"jsonrpc": "2.0", "id": rpc_id, "result": await self._call(method, params)}
        except RpcError as exc:
            return {"jsonrpc": "2.0", "id": rpc_id, "error": exc.error()}
        except HandlerFailed as exc:
            error = {"code": INTERNAL_ERROR, "message": exc.message, "data": exc.problem()}
            return {"jsonrpc": "2.0", "id": rpc_id, "error": error}

    async def _call(self, method: str, params: dict[str, Any]) -> Any:
        if method == "message/send":
            return await self._send(params)
        if method == "tasks/get":
            task = self._task(params)
            return task.to_json(_history_length(params.get("historyLength")))
        if method == "tasks/cancel":
            return self._cancel(self._task(params))
        if method.startswith("tasks/pushNotificationConfig/"):
            raise RpcError(PUSH_NOT_SUPPORTED, "Push Notification is not supported")
        if method == "agent/getAuthenticatedExtendedCard":
            raise RpcError(NO_EXTENDED_CARD, "Authenticated Extended Card is not configured")
        if method in self.agent.a2a_handlers:
            handler = self.agent.a2a_handlers[method]
            return await call(handler, params, time_limit=self.time_limit, what=f"a2a {method}")
        raise RpcError(
            METHOD_NOT_FOUND,
            "Method not found",
            {"method": method, "methods": [*A2A_METHODS, *sorted(self.agent.a2a_handlers)]},
        )

    def _task(self, params: dict[str, Any]) -> Task:
        task_id = params.get("id")
        if not isinstance(task_id, str):
            raise RpcError(INVALID_PARAMS, "Invalid parameters", "params.id (a task id) is required")
        task = self.store.get(task_id)
        if task is None:
            raise RpcError(TASK_NOT_FOUND, "Task not found", {"id": task_id})
        return task

    def _cancel(self, task: Task) -> dict[str, Any]:
        if task.final:
            raise RpcError(
                TASK_NOT_CANCELABLE, "Task cannot be canceled", {"id": task.id, "state": task.state}
            )
        task.set_state("canceled")
        if task.runner is not None:
            task.runner.cancel()
        return task.to_json()

    def _start(self, params: dict[str, Any]) -> tuple[Task, Call]:
        """Check a MessageSendParams, then the task it continues or a new one."""
        message = params.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("parts"), list):
            raise RpcError(
                INVALID_PARAMS, "Invalid parameters", "params.message with a parts list is required"
            )
        target = self._resolve(message)
        if isinstance(message.get("taskId"), str):
            task = self._task({"id": message["taskId"]})
            if task.final:
                raise RpcError(INVALID_PARAMS, "Invalid parameters", f"task {task.id} is {task.state}")
        else:
            task = self.store.create(message.get("contextId"))
        task.history.append({**message, "kind": "message", "taskId": task.id, "contextId": task.context_id})
        return task, target

    async def _send(self, params: dict[str, Any]) -> dict[str, Any]:
        task, target = self._start(params)
        configuration = params.get("configuration") or {}
        length = _history_length(configuration.get("historyLength"))
        if configuration.get("blocking", True) is False:
            task.runner = asyncio.create_task(self._run(task, target, _ignore))
            return task.to_json(length)
        await self._run(task, target, _ignore)
        return task.to_json(length)

    async def _stream(self, params: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        task, target = self._start(params)
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        async def run() -> None:
            try:
                await self._run(task, target, queue.put)
            finally:
                queue.put_nowait(None)

        task.runner = asyncio.create_task(run())
        task.set_state("working")
        yield task.to_json()
        while (event := await queue.get()) is not None:
            yield event

    async def _resubscribe(self, params: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        task = self._task(params)
        yield task.to_json()
        if task.runner is not None and not task.final:
            await asyncio.wait([task.runner])
        yield task.status_event()

    async def _run(self, task: Task, target: Call, emit: Emit) -> None:
        """Run the handler; the task ends completed (its result as an artifact) or failed."""
        task.set_state("working")
        artifact_id = new_id()
        try:
            async with asyncio.timeout(self.time_limit):
                if target.streaming:
                    chunks = 0
                    async for chunk in target.fn(target.argument):
                        artifact = {"artifactId": artifact_id, "name": "result", "parts": parts_of(chunk)}
                        _add_artifact(task, artifact, append=chunks > 0)
                        await emit(task.artifact_event(artifact, append=chunks > 0, last=False))
                        chunks += 1
                    result_parts = [p for a in task.artifacts for p in a["parts"]]
                else:
                    result = await call(
                        target.fn, target.argument, time_limit=self.time_limit, what=target.what
                    )
                    result_parts = parts_of(result)
                    artifact = {"artifactId": artifact_id, "name": "result", "parts": result_parts}
                    _add_artifact(task, artifact, append=False)
                    await emit(task.artifact_event(artifact, append=False, last=True))
        except asyncio.CancelledError:
            if task.state != "canceled":
                raise
            await emit(task.status_event())
            return
        except Exception as exc:  # the package's failure (HandlerFailed, a timeout, ...) fails the task
            message = exc.message if isinstance(exc, HandlerFailed) else f"{target.what} failed: {exc!r}"
            task.set_state("failed", message)
            await emit(task.status_event())
            return
        if task.state == "canceled":
            return
        reply = agent_message(result_parts, task.id, task.context_id)
        task.history.append(reply)
        task.set_state("completed")
        task.status_message = reply
        await emit(task.status_event())

    def _resolve(self, message: dict[str, Any]) -> Call:
        parts = [p for p in message["parts"] if isinstance(p, dict)]
        data = next(
            (p["data"] for p in parts if p.get("kind") == "data" and isinstance(p.get("data"), dict)), None
        )
        text = "".join(str(p.get("text", "")) for p in parts if p.get("kind") == "text")
        metadata: dict[str, Any] = message["metadata"] if isinstance(message.get("metadata"), dict) else {}
        action = metadata.get("action") or metadata.get("skill") or (data or {}).get("action")
        if action:
            if "params" in metadata:
                argument = metadata["params"]
            else:
                body = {k: v for k, v in (data or {}).items() if k != "action"}
                argument = body.get("params", body)
            if action in self.agent.a2a_streams:
                return Call(self.agent.a2a_streams[action], argument, f"a2a {action}", streaming=True)
            if action in self.agent.a2a_handlers:
                return Call(self.agent.a2a_handlers[action], argument, f"a2a {action}")
            raise RpcError(
                INVALID_PARAMS,
                "Invalid parameters",
                {"reason": f"action {action!r} not found", "actions": self._actions()},
            )
        if self.agent.handler is not None:
            return Call(self.agent.handler, data if data is not None else {"text": text}, "entrypoint")
        raise RpcError(
            INVALID_PARAMS,
            "Invalid parameters",
            {"reason": "no action given and the package has no entrypoint", "actions": self._actions()},
        )

    def _actions(self) -> list[str]:
        return sorted({*self.agent.a2a_handlers, *self.agent.a2a_streams})


def _request_id(request: Any) -> str | int | None:
    """The request's id; a request that is not an object, or an id of the wrong type, is -32600."""
    if not isinstance(request, dict):
        raise RpcError(INVALID_REQUEST, "Request payload validation error", "not a JSON-RPC request object")
    rpc_id = request.get("id")
    if rpc_id is not None and (isinstance(rpc_id, bool) or not isinstance(rpc_id, str | int)):
        raise RpcError(INVALID_REQUEST, "Request payload validation error", "id must be a string or a number")
    return rpc_id


def _method(request: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str):
        raise RpcError(INVALID_REQUEST, "Request payload validation error", "jsonrpc '2.0' and a method")
    params = request.get("params", {})
    if not isinstance(params, dict):
        raise RpcError(INVALID_PARAMS, "Invalid parameters", "params must be an object")
    return request["method"], params


def parse_error(detail: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": PARSE_ERROR, "message": "Parse error", "data": detail},
    }


async def _responses(
    rpc_id: str | int | None, events: AsyncIterator[dict[str, Any]]
) -> AsyncIterator[dict[str, Any]]:
    try:
        async for event in events:
            yield {"jsonrpc": "2.0", "id": rpc_id, "result": event}
    except RpcError as exc:
        yield {"jsonrpc": "2.0", "id": rpc_id, "error": exc.error()}


def sse(response: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(response, default=str)}\n\n".encode()


def _history_length(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RpcError(INVALID_PARAMS, "Invalid parameters", "historyLength must be a non-negative integer")
    return value


def _add_artifact(task: Task, artifact: dict[str, Any], *, append: bool) -> None:
    existing = next((a for a in task.artifacts if a["artifactId"] == artifact["artifactId"]), None)
    if existing is None:
        task.artifacts.append({**artifact, "parts": list(artifact["parts"])})
    elif append:
        existing["parts"].extend(artifact["parts"])


async def _ignore(_: dict[str, Any]) -> None:
    return None
