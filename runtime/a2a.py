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
from runtime.tasks import Pending, Task, TaskStore, agent_message, new_id, parts_of

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
            if method == "message/stream":  # checked before the stream starts: a plain error answer
                return _responses(rpc_id, self._stream(*self._start(params)))
            if method == "tasks/resubscribe":
                return _responses(rpc_id, self._resubscribe(params))
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
        check_message(message)
        assert isinstance(message, dict)
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

    async def _stream(self, task: Task, target: Call) -> AsyncIterator[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        async def run() -> None:
            try:
                await self._run(task, target, queue.put, inline=True)
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

    async def _run(self, task: Task, target: Call, emit: Emit, *, inline: bool = False) -> None:
        """Run the handler; the task ends completed (its result as an artifact) or failed, or stays
        open when the handler says so (`runtime.sdk.input_required` / `keep_working`). `inline`: the
        caller (a stream) waits for a `keep_working` continuation too."""
        task.set_state("working")
        artifact_id = new_id()
        result: Any = None
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
        if target.streaming:
            await self._complete(task, result_parts, emit)
        else:
            await self._settle(task, result, artifact_id, emit, inline=inline)

    async def _settle(self, task: Task, result: Any, artifact_id: str, emit: Emit, *, inline: bool) -> None:
        """A handler's result: an artifact and `completed`, or the open state it asked for."""
        if isinstance(result, Pending):
            reply = None
            if result.message is not None:
                reply = agent_message(parts_of(result.message), task.id, task.context_id)
                task.history.append(reply)
            task.set_state(result.state)
            task.status_message = reply
            await emit(task.status_event())
            if result.state == "working" and result.then is not None:
                continuation = self._continue(task, result.then, artifact_id, emit)
                if inline:
                    await continuation
                else:
                    task.runner = asyncio.create_task(continuation)
            return
        result_parts = parts_of(result)
        artifact = {"artifactId": artifact_id, "name": "result", "parts": result_parts}
        _add_artifact(task, artifact, append=False)
        await emit(task.artifact_event(artifact, append=False, last=True))
        await self._complete(task, result_parts, emit)

    async def _continue(
        self, task: Task, then: Callable[[], Awaitable[Any]], artifact_id: str, emit: Emit
    ) -> None:
        """The rest of a `keep_working` handler's work, within the same time limit."""
        try:
            async with asyncio.timeout(self.time_limit):
                result = await then()
        except asyncio.CancelledError:
            if task.state != "canceled":
                raise
            await emit(task.status_event())
            return
        except Exception as exc:
            task.set_state("failed", f"a2a continuation failed: {exc!r}")
            await emit(task.status_event())
            return
        if task.state == "canceled":
            return
        await self._settle(task, result, artifact_id, emit, inline=True)

    async def _complete(self, task: Task, result_parts: list[dict[str, Any]], emit: Emit) -> None:
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


def _invalid(field: str, reason: str) -> RpcError:
    return RpcError(INVALID_PARAMS, "Invalid parameters", {"field": field, "reason": reason})


def check_message(message: Any) -> None:
    """A Message as A2A 0.3 defines it (§6.4, §6.5): messageId, role and at least one part, each a
    text, file or data part; -32602 naming the first field that is not."""
    if not isinstance(message, dict):
        raise _invalid("params.message", "a Message object is required")
    if not isinstance(message.get("messageId"), str) or not message["messageId"]:
        raise _invalid("params.message.messageId", "a non-empty string is required")
    if message.get("role") not in ("user", "agent"):
        raise _invalid("params.message.role", "must be 'user' or 'agent'")
    parts = message.get("parts")
    if not isinstance(parts, list) or not parts:
        raise _invalid("params.message.parts", "a message must contain at least one part")
    for i, part in enumerate(parts):
        where = f"params.message.parts[{i}]"
        if not isinstance(part, dict):
            raise _invalid(where, "a part must be an object")
        kind = part.get("kind")
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise _invalid(f"{where}.text", "a text part needs its text (a string)")
        elif kind == "data":
            if not isinstance(part.get("data"), dict):
                raise _invalid(f"{where}.data", "a data part needs its data (an object)")
        elif kind == "file":
            file = part.get("file")
            if not isinstance(file, dict) or not (
                isinstance(file.get("bytes"), str) or isinstance(file.get("uri"), str)
            ):
                raise _invalid(f"{where}.file", "a file part needs a file with bytes or uri")
        else:
            raise _invalid(f"{where}.kind", f"must be text, file or data, not {kind!r}")


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
