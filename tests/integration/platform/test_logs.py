"""`par logs` through a real `par up` (issue 20 §1): an agent's output with the instance and version
on each line, `--follow` through scale to zero and from zero, `--tail`, `--since`, `-o json`,
grants (a key granted only other agents gets 403), and rotation bounding the files."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.apkgs import demo_variant
from tests.support.platform import ParUp, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

IDLE = 2.0
MAX_BYTES, MAX_FILES = 8192, 2
PRINTS = (
    "def handler(context):\n"
    "    for n in range(int(context.get('lines', 1))):\n"
    "        print(f\"{context.get('say', 'hello')} {n} \" + 'x' * int(context.get('pad', 0)), flush=True)\n"
    "    return {'ok': True}\n"
)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ParUp]:
    env = {"PAR_SCALE_TO_ZERO_AFTER": str(IDLE), "PAR_LOG_MAX_BYTES": str(MAX_BYTES),
           "PAR_LOG_MAX_FILES": str(MAX_FILES)}
    running = ParUp(tmp_path_factory.mktemp("par") / "data", env=env).start()
    try:
        yield running
    finally:
        running.stop()
        running.kill()


def _deploy(platform: ParUp, tmp_path: Path, name: str) -> None:
    platform.deploy(demo_variant(tmp_path / name, name, "0.1.0", PRINTS))


def _say(platform: ParUp, agent: str, **body: object) -> None:
    response = platform.call(agent, json_body=body)
    assert response.status_code == 200, response.text


def _logs(platform: ParUp, *args: str) -> str:
    return platform.cli("logs", *args).stdout


def _shows(platform: ParUp, agent: str, text: str) -> str:
    """`par logs AGENT` once it shows `text` (an instance's lines are written as they come)."""
    def attempt() -> str | None:
        out = _logs(platform, agent)
        return out if text in out else None

    return str(wait_until(attempt, 20, f"{text!r} in par logs {agent}"))


def test_logs_show_each_line_with_instance_and_version(platform: ParUp, tmp_path: Path) -> None:
    _deploy(platform, tmp_path, "printer")
    _say(platform, "printer", say="first", lines=2)
    shown = _shows(platform, "printer", "first 1")
    records = [json.loads(line) for line in _logs(platform, "printer", "-o", "json").splitlines()]
    said = [r for r in records if r["line"].startswith("first ")]
    instance = said[0]["instance"]
    assert instance.startswith("printer-")
    assert f"[{instance} 0.1.0] first 0" in shown, shown
    assert f"[{instance} 0.1.0] first 1" in shown, shown
    assert [(r["agent"], r["version"], r["instance"]) for r in said] == [("printer", "0.1.0", instance)] * 2
    assert all(r["time"].endswith("Z") for r in said)

    assert _logs(platform, "printer", "--tail", "1").count("\n") == 1
    assert "first 0" in _logs(platform, "printer", "--instance", instance)
    assert _logs(platform, "printer", "--instance", "printer-000000") == ""
    assert _logs(platform, "printer", "--version", "9.9.9") == ""

    time.sleep(4)
    _say(platform, "printer", say="second")
    _shows(platform, "printer", "second 0")
    recent = _logs(platform, "printer", "--since", "3s")
    assert "second 0" in recent and "first 0" not in recent, recent

    missing = platform.cli("logs", "no-such-agent", check=False)
    assert missing.returncode == 1 and "Agent not found" in missing.stderr

    # The console's agent page polls the same lines.
    with httpx.Client(base_url=platform.info["registry_url"] + "/console", timeout=30) as console:
        assert console.get("/agents/default/printer/logs").status_code == 401
        assert console.post("/login", data={"key": platform.admin_key}).status_code == 303
        assert 'id="logs-panel"' in console.get("/agents/default/printer").text
        lines = console.get("/agents/default/printer/logs").json()["lines"]
    assert {"first 0", "second 0"} <= {r["line"].strip() for r in lines}
    assert all(r["instance"] and r["version"] == "0.1.0" for r in lines)


def test_follow_streams_across_scale_to_zero(platform: ParUp, tmp_path: Path) -> None:
    _deploy(platform, tmp_path, "follower")
    wait_until(lambda: not platform.instances("follower"), 30, "follower at zero")
    env = {"PAR_DATA_DIR": str(platform.data_dir), "PATH": "/usr/bin:/bin"}
    follow = subprocess.Popen(
        [platform.python, "-c", "from cli.main import main; main()", "logs", "follower", "-f", "-o", "json"],
        cwd=platform.cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in follow.stdout or ()], daemon=True).start()

    def next_said(word: str) -> dict[str, object]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                record = json.loads(lines.get(timeout=1))
            except queue.Empty:
                continue
            if str(record["line"]).startswith(word):
                return record
        raise AssertionError(f"par logs -f showed no {word!r}: {follow.poll()} {follow.stderr}")

    try:
        time.sleep(2)  # the command is streaming before the first instance starts from zero
        _say(platform, "follower", say="one")
        first = next_said("one")
        wait_until(lambda: not platform.instances("follower"), 30, "scale to zero")
        assert follow.poll() is None  # still streaming with no instance
        _say(platform, "follower", say="two")
        second = next_said("two")
        assert first["instance"] != second["instance"]
        assert first["version"] == second["version"] == "0.1.0"
    finally:
        follow.terminate()
        follow.wait(10)


def test_a_key_granted_other_agents_gets_403(platform: ParUp, tmp_path: Path) -> None:
    _deploy(platform, tmp_path, "secretive")
    with platform.registry() as client:
        def key(grants: list[str]) -> str:
            made = client.post("/v1/keys", json={"name": "t", "tenant": "default", "grants": grants})
            assert made.status_code == 201, made.text
            return str(made.json()["key"])

        other, granted = key(["default/printer"]), key(["default/secret*"])
    url = f"{platform.info['registry_url']}/v1/namespaces/default/agents/secretive/logs"
    refused = httpx.get(url, headers={"Authorization": f"Bearer {other}"}, timeout=30)
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "forbidden"
    assert httpx.get(url, headers={"Authorization": f"Bearer {granted}"}, timeout=30).status_code == 200
    assert httpx.get(url, timeout=30).status_code == 401


def test_rotation_bounds_the_files(platform: ParUp, tmp_path: Path) -> None:
    _deploy(platform, tmp_path, "chatty")
    for n in range(4):
        _say(platform, "chatty", say=f"chat{n}", lines=50, pad=100)
    _shows(platform, "chatty", "chat3 49")  # everything written (the collector is asynchronous)
    logs = platform.data_dir / "logs"
    files = sorted(p for p in logs.iterdir() if p.name.startswith("default.chatty."))
    assert [p.name for p in files] == [f"default.chatty.0.1.0.log{s}" for s in ("", ".1", ".2")]
    assert all(p.stat().st_size <= MAX_BYTES for p in files)
