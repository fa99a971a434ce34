"""`par deploy` shows the preparation's progress messages while the rollout is `deploying`."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from registry.commands.deploy import _follow


class _Statuses:
    """The registry's answers to GET .../deployment, one per poll."""

    def __init__(self, *statuses: dict[str, Any]) -> None:
        self.statuses = list(statuses)

    def json(self, method: str, path: str) -> dict[str, Any]:
        return {"generation": 1, "status": self.statuses.pop(0)}


def test_each_new_message_is_printed_once(monkeypatch: Any) -> None:
    monkeypatch.setattr("registry.commands.deploy.time.sleep", lambda _: None)
    preparing = {"phase": "deploying", "conditions": [], "message": "0.1.0: installing requirements.txt"}
    polls = _Statuses(
        preparing,
        {**preparing, "message": "0.1.0: installed 3 packages"},
        {"phase": "ready", "conditions": [{"type": "Ready", "status": "True"}], "url": "http://x"},
    )
    out = io.StringIO()
    first = {"generation": 1, "status": {"phase": "deploying", "conditions": [], "message": "preparing"}}
    final = _follow(polls, "/v1/namespaces/default/agents/a", first, 60, Console(file=out, width=200))  # type: ignore[arg-type]
    lines = [line.strip() for line in out.getvalue().splitlines() if line.strip()]
    assert lines == ["preparing", "0.1.0: installing requirements.txt", "0.1.0: installed 3 packages",
                     "Ready: True"]
    assert final["status"]["phase"] == "ready"
