"""A2A over JSON-RPC 2.0: the agent card and `POST /a2a` onto the package's a2a `custom_handlers`.

Methods:
- `message/send` (A2A): the action is `params.message.metadata.action`, or the `action` key of
  the first data part (whose `params` key, else the rest of the part, is the params). Without an
  action the message goes to the entrypoint (context: the data part, or `{"text": ...}`).
  The result comes back as an agent `Message` with one data part.
- any custom handler's name, called directly with `params` (the current runtime's shortcut).
"""

from __future__ import annotations

import uuid
from typing import Any

from runtime.agent import Agent
from runtime.invoke import HandlerFailed, call

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = (
    -32700,
    -32600,
    -32601,
    -32602,
    -32603,
)


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


def agent_card(agent: Agent, base_url: str) -> dict[str, Any]:
    """The A2A agent card (`/.well-known/agent.json`): one skill per custom handler."""
    manifest = agent.prepared.manifest
    return {
        "protocolVersion": "0.3.0",
        "name": manifest.display_name or manifest.name,
        "description": manifest.description or "",
        "version": manifest.version,
        "url": f"{base_url.rstrip('/')}/a2a",
        "preferredTransport": "JSONRPC",
        "capabilities": {"streaming": False, "pushNotifications": False},
        "defaultInputModes": ["application/json", "text/plain"],
        "defaultOutputModes": ["application/json"],
        "skills": [
            {"id": name, "name": name, "description": (fn.__doc__ or "").strip(), "tags": []}
            for name, fn in sorted({**agent.a2a_handlers, **agent.a2a_streams}.items())
        ],
    }


async def dispatch(agent: Agent, request: Any, time_limit: float) -> dict[str, Any]:
    """Answer one JSON-RPC request object (errors become JSON-RPC error responses)."""
    rpc_id = request.get("id") if isinstance(request, dict) else None
    try:
        if (
            not isinstance(request, dict)
            or request.get("jsonrpc") != "2.0"
            or not isinstance(request.get("method"), str)
        ):
            raise RpcError(INVALID_REQUEST, "not a JSON-RPC 2.0 request object")
        params = request.get("params", {})
        method = request["method"]
        if method == "message/send":
            result = await _message_send(agent, params, time_limit)
        elif method in agent.a2a_handlers:
            handler = agent.a2a_handlers[method]
            result = await call(handler, params, time_limit=time_limit, what=f"a2a {method}")
        else:
            raise RpcError(
                METHOD_NOT_FOUND,
                f"method {method!r} not found",
                {"methods": ["message/send", *sorted(agent.a2a_handlers)]},
            )
    except RpcError as exc:
        error = {"code": exc.code, "message": exc.message}
        if exc.data is not None:
            error["data"] = exc.data
        return {"jsonrpc": "2.0", "id": rpc_id, "error": error}
    except HandlerFailed as exc:
        return {
            "jsonrpc": "2.0",
            "id": rpc_id,
            "error": {"code": INTERNAL_ERROR, "message": exc.message, "data": exc.problem()},
        }
    return {"jsonrpc": "2.0", "id": rpc_id, "result": result}


async def _message_send(agent: Agent, params: Any, time_limit: float) -> dict[str, Any]:
    message = params.get("message") if isinstance(params, dict) else None
    if not isinstance(message, dict) or not isinstance(message.get("parts"), list):
        raise RpcError(INVALID_PARAMS, "params.message with a parts list is required")
    data_part = next(
        (
            p.get("data")
            for p in message["parts"]
            if isinstance(p, dict) and p.get("kind") == "data" and isinstance(p.get("data"), dict)
        ),
        None,
    )
    text = "".join(
        p.get("text", "") for p in message["parts"] if isinstance(p, dict) and p.get("kind") == "text"
    )
    action = (message.get("metadata") or {}).get("action") or (data_part or {}).get("action")
    if action:
        if action not in agent.a2a_handlers:
            raise RpcError(
                METHOD_NOT_FOUND, f"action {action!r} not found", {"actions": sorted(agent.a2a_handlers)}
            )
        body = dict(data_part or {})
        body.pop("action", None)
        action_params = body.get("params", body)
        handler = agent.a2a_handlers[action]
        result = await call(handler, action_params, time_limit=time_limit, what=f"a2a {action}")
    elif agent.handler is not None:
        context = data_part if data_part is not None else {"text": text}
        result = await call(agent.handler, context, time_limit=time_limit, what="entrypoint")
    else:
        raise RpcError(
            INVALID_PARAMS,
            "no action given and the package has no entrypoint",
            {"actions": sorted(agent.a2a_handlers)},
        )
    reply: dict[str, Any] = {
        "kind": "message",
        "messageId": str(uuid.uuid4()),
        "role": "agent",
        "parts": [{"kind": "data", "data": result}],
    }
    for key in ("contextId", "taskId"):
        if key in message:
            reply[key] = message[key]
    return reply
