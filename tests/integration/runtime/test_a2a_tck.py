"""The A2A 0.3 conformance kit (TCK, ../shared/a2a-tck) against PAR's runtime (issue 17).

`scripts/a2a-tck.sh` runs the kit from its own pinned venv (.cache/tools/a2a-tck) against
`par runtime serve` of tests/integration/runtime/tck-agent, built by the real pixell-kit: a
conversation whose task answers `working` at once, then waits for input (`runtime.sdk`
`keep_working` / `input_required`), as the kit's continuation, history and cancellation cases need.
Categories mandatory, quality and features, each bounded in time. Every case passes except those
listed below, each with its reason. With the demo agent and no message validation (main before
this) the kit scored mandatory 26/30, quality 10/14, features 13/16.

Where PAR follows the A2A 0.3 specification against the kit:
- A Message's `messageId` and `role` are required (§6.4: "`messageId` | `string` | Yes", "`role` |
  `"user"` \\| `"agent"` | Yes") and `parts` "Must contain at least one part": PAR answers -32602
  naming the field. The kit's own `test_reference_task_ids_valid` creates its reference task with a
  message that has neither, so it skips itself ("Failed to create reference task").
- "A task which has reached a terminal state (completed, canceled, rejected, or failed) can't be
  restarted. Sending a message to such a task will result in an error" (§7.1), and tasks/cancel of
  one is `TaskNotCancelableError` (-32002, §8.2: "it has already reached a terminal state like
  `completed`, `failed`, or `canceled`"). With the demo agent (tasks complete at once) the kit's
  continuation and cancellation cases failed on exactly that; the TCK agent keeps its tasks open, so
  they exercise continuation and cancellation, and `test_terminal_tasks_refuse_messages_and_cancel`
  checks the spec's rule itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.runtime.conftest import RuntimeProcess, start
from tests.support.apkgs import build_apkg

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
TCK = Path(os.environ.get("A2A_TCK_DIR", ROOT.parent / "shared" / "a2a-tck"))
AGENT = Path(__file__).parent / "tck-agent"
CATEGORY_SECONDS = 300  # each category takes seconds here; a hang fails the test instead of CI

# nodeid -> (the outcome PAR expects, why). Anything else must pass (or xpass).
NOT_PASSING = {
    "tests/mandatory/protocol/test_a2a_v030_new_methods.py::TestAuthenticatedExtendedCard::"
    "test_authenticated_extended_card_method_exists":
        ("skipped", "the runtime offers no authenticated extended card (the card says so; -32007)"),
    "tests/mandatory/protocol/test_a2a_v030_new_methods.py::TestAuthenticatedExtendedCard::"
    "test_authenticated_extended_card_without_auth":
        ("skipped", "the runtime offers no authenticated extended card (the card says so; -32007)"),
    "tests/mandatory/protocol/test_a2a_v030_transport_compliance.py::test_multi_transport_method_mapping":
        ("skipped", "the card declares one transport, JSON-RPC (gRPC is served by the platform's front)"),
    "tests/optional/features/test_reference_task_ids.py::test_reference_task_ids_valid":
        ("skipped", "the kit's reference task message has no messageId and no role: -32602 per §6.4"),
}
MINIMUM_PASSED = {"mandatory": 30, "quality": 14, "features": 15}


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeProcess]:
    if not (TCK / "run_tck.py").is_file():
        pytest.skip(f"no A2A TCK at {TCK} (set A2A_TCK_DIR)")
    tmp = tmp_path_factory.mktemp("tck-agent")
    server = start([str(build_apkg(AGENT, tmp, tool="kit"))], tmp)
    yield server
    server.stop()


def _run_category(agent: RuntimeProcess, category: str, report: Path) -> dict:
    started = time.monotonic()
    done = subprocess.run(
        [str(ROOT / "scripts" / "a2a-tck.sh"), "run", agent.url("/a2a"), category, str(report)],
        capture_output=True, text=True, timeout=CATEGORY_SECONDS, check=False,
        env={**os.environ, "A2A_TCK_DIR": str(TCK)},
    )
    took = time.monotonic() - started
    assert report.is_file(), f"no report after {took:.0f}s:\n{done.stdout}\n{done.stderr}"
    return json.loads(report.read_text())


@pytest.mark.parametrize("category", ["mandatory", "quality", "features"])
def test_the_tck(agent: RuntimeProcess, category: str, tmp_path: Path) -> None:
    report = _run_category(agent, category, tmp_path / f"{category}.json")
    outcomes = {t["nodeid"]: t["outcome"] for t in report["tests"]}
    unexpected = {
        nodeid: outcome
        for nodeid, outcome in outcomes.items()
        if outcome not in ("passed", "xpassed") and NOT_PASSING.get(nodeid, ("",))[0] != outcome
    }
    details = {
        t["nodeid"]: str((t.get("call") or t.get("setup") or {}).get("longrepr", ""))[-600:]
        for t in report["tests"] if t["nodeid"] in unexpected
    }
    assert not unexpected, json.dumps(details, indent=1)
    passed = sum(outcome in ("passed", "xpassed") for outcome in outcomes.values())
    assert passed >= MINIMUM_PASSED[category], report["summary"]


def _rpc(agent: RuntimeProcess, method: str, params: dict) -> dict:
    body = {"jsonrpc": "2.0", "id": str(uuid.uuid4()), "method": method, "params": params}
    return httpx.post(agent.url("/a2a"), json=body, timeout=30).json()


def _message(text: str, **fields: object) -> dict:
    return {"kind": "message", "messageId": str(uuid.uuid4()), "role": "user",
            "parts": [{"kind": "text", "text": text}], **fields}


def test_terminal_tasks_refuse_messages_and_cancel(agent: RuntimeProcess) -> None:
    """§7.1: "A task which has reached a terminal state (completed, canceled, rejected, or failed)
    can't be restarted. Sending a message to such a task will result in an error." §8.2: -32002
    TaskNotCancelableError, "it has already reached a terminal state"."""
    task = _rpc(agent, "message/send", {"message": _message("hello")})["result"]
    assert task["status"]["state"] == "working"  # keep_working: answered at once
    deadline = time.monotonic() + 10
    while _rpc(agent, "tasks/get", {"id": task["id"]})["result"]["status"]["state"] != "input-required":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    done = _rpc(agent, "message/send", {"message": _message("done", taskId=task["id"])})["result"]
    assert done["status"]["state"] == "completed"
    again = _rpc(agent, "message/send", {"message": _message("more", taskId=task["id"])})
    assert again["error"]["code"] == -32602 and "completed" in json.dumps(again["error"])
    assert _rpc(agent, "tasks/cancel", {"id": task["id"]})["error"]["code"] == -32002


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"kind": "message", "role": "user", "parts": [{"kind": "text", "text": "x"}]}, "messageId"),
        ({"kind": "message", "messageId": "m", "role": "user", "parts": []}, "parts"),
        ({"kind": "message", "messageId": "m", "parts": [{"kind": "text", "text": "x"}]}, "role"),
        ({"kind": "message", "messageId": "m", "role": "user", "parts": [{"type": "x", "text": "x"}]},
         "parts[0].kind"),
        ({"kind": "message", "messageId": "m", "role": "user", "parts": [{"kind": "image"}]},
         "parts[0].kind"),
        ({"kind": "message", "messageId": "m", "role": "user", "parts": [{"kind": "file", "file": {}}]},
         "parts[0].file"),
    ],
)
@pytest.mark.parametrize("method", ["message/send", "message/stream"])
def test_invalid_messages_are_invalid_params_naming_the_field(
    agent: RuntimeProcess, method: str, message: dict, field: str
) -> None:
    answer = _rpc(agent, method, {"message": message})
    assert answer["error"]["code"] == -32602, answer
    assert answer["error"]["data"]["field"] == f"params.message.{field}", answer


def test_outside_a2a_an_open_task_is_its_answer(agent: RuntimeProcess) -> None:
    """/invoke has no task to leave open: `keep_working(then)` answers what `then()` settles to,
    `input_required(message)` its message."""
    answer = httpx.post(agent.url("/invoke"), json={"text": "hi"}, timeout=30)
    assert answer.status_code == 200 and answer.json().startswith("You said 'hi'."), answer.text
    assert httpx.post(agent.url("/invoke"), json={"text": "done"}, timeout=30).json() == "Goodbye!"
