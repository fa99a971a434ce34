"""Fail closed (issue 17): the eventing admin API and the dead-letter store refuse to start without
PAR_EVENTING_ADMIN_TOKEN unless told, explicitly, that they run unauthenticated."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.net import free_port, stop_process, wait_http

ROOT = Path(__file__).resolve().parents[3]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAR_", "KAFKA_"))}
    return {**env, **extra}


@pytest.mark.parametrize(
    "command",
    [["eventing", "serve"], ["eventing", "dlq", "serve", "--store", "STORE"]],
    ids=["admin-api", "dead-letter-store"],
)
@pytest.mark.parametrize("token", [None, ""], ids=["unset", "empty"])
def test_no_token_is_one_line_naming_the_variable(
    command: list[str], token: str | None, tmp_path: Path
) -> None:
    command = [str(tmp_path / "dl.sqlite3") if c == "STORE" else c for c in command]
    env = _env() if token is None else _env(PAR_EVENTING_ADMIN_TOKEN=token)
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", *command, "--port", str(free_port())],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "PAR_EVENTING_ADMIN_TOKEN is not set" in line and "--insecure-no-auth" in line
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    "env_or_flag", [{"PAR_EVENTING_INSECURE_NO_AUTH": "true"}, "--insecure-no-auth"], ids=["setting", "flag"]
)
def test_the_dead_letter_store_runs_unauthenticated_only_when_told(
    env_or_flag: object, tmp_path: Path
) -> None:
    port = free_port()
    flags = [env_or_flag] if isinstance(env_or_flag, str) else []
    env = _env(**env_or_flag) if isinstance(env_or_flag, dict) else _env()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "eventing", "dlq", "serve",
         "--store", str(tmp_path / "dl.sqlite3"), "--port", str(port), *flags],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        assert httpx.get(f"http://127.0.0.1:{port}/dead-letters").status_code == 200
    finally:
        stop_process(proc)


def test_the_apps_refuse_without_a_token_unless_told(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same rule for whoever builds the apps in process (not only the serve commands)."""
    for name in ("PAR_EVENTING_ADMIN_TOKEN", "PAR_EVENTING_INSECURE_NO_AUTH"):
        monkeypatch.delenv(name, raising=False)
    from eventing.app import create_app
    from eventing.dlq_api import standalone_app
    from eventing.settings import EventingSettings

    with pytest.raises(ValueError, match="PAR_EVENTING_ADMIN_TOKEN is not set"):
        create_app(EventingSettings(), "127.0.0.1:9")
    with pytest.raises(ValueError, match="PAR_EVENTING_ADMIN_TOKEN is not set"):
        standalone_app(str(tmp_path / "dl.sqlite3"), None, 5.0)
    assert create_app(EventingSettings(PAR_EVENTING_INSECURE_NO_AUTH=True), "127.0.0.1:9") is not None
    assert standalone_app(str(tmp_path / "dl.sqlite3"), "t", 5.0) is not None
