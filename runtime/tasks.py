"""A2A tasks, kept in this instance's memory.

Limit (docs/migrating.md): tasks live only in the process that ran them. An instance scaled to
zero, restarted or replaced forgets them (`tasks/get` then answers -32001), and another replica
behind the same Service never sees them. At most `MAX_TASKS` are kept; the oldest finished ones
are dropped first.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MAX_TASKS = 1000
TERMINAL = frozenset({"completed", "canceled", "failed", "rejected"})
INTERRUPTED = frozenset({"input-required", "auth-required"})  # the task waits for the client: a stream ends


@dataclass(frozen=True)
class Pending:
    """What an A2A handler returns to leave its task open instead of completing it (`runtime.sdk`
    `input_required` / `keep_working`): `input-required` (the next message with this taskId goes to
    the handler again), or `working` with `then`, the rest of the work (its result settles the task
    as a handler's result does). `message` is the agent's message to the client (text or data)."""

    state: str
    message: Any = None
    then: Callable[[], Awaitable[Any]] | None = None


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def new_id() -> str:
    return str(uuid.uuid4())


def parts_of(value: Any) -> list[dict[str, Any]]:
    """A handler's result as A2A parts: text for a string, data (an object) for anything else."""
    if isinstance(value, str):
        return [{"kind": "text", "text": value}]
    return [{"kind": "data", "data": value if isinstance(value, dict) else {"result": value}}]


def agent_message(parts: list[dict[str, Any]], task_id: str, context_id: str) -> dict[str, Any]:
    return {
        "kind": "message",
        "messageId": new_id(),
        "role": "agent",
        "parts": parts,
        "taskId": task_id,
        "contextId": context_id,
    }


@dataclass
class Task:
    id: str
    context_id: str
    state: str = "submitted"
    status_message: dict[str, Any] | None = None
    timestamp: str = field(default_factory=now)
    history: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    runner: asyncio.Task[Any] | None = None

    @property
    def final(self) -> bool:
        return self.state in TERMINAL

    def set_state(self, state: str, text: str | None = None) -> None:
        self.state, self.timestamp = state, now()
        self.status_message = None
        if text is not None:
            self.status_message = agent_message([{"kind": "text", "text": text}], self.id, self.context_id)

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {"state": self.state, "timestamp": self.timestamp}
        if self.status_message is not None:
            status["message"] = self.status_message
        return status

    def to_json(self, history_length: int | None = None) -> dict[str, Any]:
        history = (
            self.history if history_length is None else self.history[len(self.history) - history_length :]
        )
        body: dict[str, Any] = {
            "kind": "task",
            "id": self.id,
            "contextId": self.context_id,
            "status": self.status(),
            "history": history if history_length != 0 else [],
        }
        if self.artifacts:
            body["artifacts"] = self.artifacts
        return body

    def status_event(self) -> dict[str, Any]:
        return {
            "kind": "status-update",
            "taskId": self.id,
            "contextId": self.context_id,
            "status": self.status(),
            "final": self.final or self.state in INTERRUPTED,
        }

    def artifact_event(self, artifact: dict[str, Any], *, append: bool, last: bool) -> dict[str, Any]:
        return {
            "kind": "artifact-update",
            "taskId": self.id,
            "contextId": self.context_id,
            "artifact": artifact,
            "append": append,
            "lastChunk": last,
        }


class TaskStore:
    def __init__(self, limit: int = MAX_TASKS) -> None:
        self.limit = limit
        self._tasks: OrderedDict[str, Task] = OrderedDict()

    def get(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def create(self, context_id: str | None) -> Task:
        task = Task(id=new_id(), context_id=context_id or new_id())
        self._tasks[task.id] = task
        self._evict()
        return task

    def _evict(self) -> None:
        while len(self._tasks) > self.limit:
            finished = next((k for k, t in self._tasks.items() if t.final), None)
            self._tasks.pop(finished if finished is not None else next(iter(self._tasks)))
