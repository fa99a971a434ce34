"""Real runtime processes (`par runtime serve` / `python -m runtime`) on loopback ports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.apkgs import build_apkg
from tests.support.net import free_port

HERE = Path(__file__).parent
PAR = Path(sys.executable).with_name("par")
_RUNTIME_VARS = {"AGENT_PACKAGE_PATH", "PACKAGE_URL", "PACKAGE_SHA256", "PORT", "K_SINK"}


class RuntimeProcess:
    """One runtime server; its stderr (JSON log lines) goes to a file the test can read."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.proc, self.port, self.log_path = proc, port, log_path
        self.base = f"http://127.0.0.1:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_lines(self) -> list[dict]:
        lines = []
        for raw in self.output().splitlines():
            if raw.startswith("{"):
                lines.append(json.loads(raw))
        return lines

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)


def runtime_env(work_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _RUNTIME_VARS}
    env.update({"PAR_RUNTIME_WORK_DIR": str(work_dir), "PAR_RUNTIME_HOST": "127.0.0.1"}, **extra)
    return env


def run_par(
    args: list[str], work: Path, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run `par ARGS` to completion (for commands expected to finish or to fail)."""
    return subprocess.run(
        [str(PAR), *args],
        env=runtime_env(work, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def launch(
    args: list[str], log_path: Path, env: dict[str, str], *, module: bool = False
) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "runtime", *args] if module else [str(PAR), "runtime", "serve", *args]
    with open(log_path, "wb") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)


def start(
    args: list[str],
    tmp: Path,
    *,
    module: bool = False,
    port_env: bool = False,
    ready_timeout: float = 60.0,
    **env: str,
) -> RuntimeProcess:
    """Start a runtime and wait for its first 200 on /readyz (fail fast if it exits).
    The port goes in `--port`, or in `$PORT` when `port_env` (as Knative does)."""
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    log_path = tmp / f"runtime-{port}.log"
    if port_env:
        env["PORT"] = str(port)
    else:
        args = [*args, "--port", str(port)]
    proc = launch(args, log_path, runtime_env(tmp / "work", **env), module=module)
    return wait_ready(RuntimeProcess(proc, port, log_path), ready_timeout)


def wait_ready(server: RuntimeProcess, ready_timeout: float = 60.0) -> RuntimeProcess:
    """Until the first 200 on /readyz (fail fast if the process exits, kill it on a timeout)."""
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError(f"runtime exited with {server.proc.returncode}:\n{server.output()}")
        try:
            if httpx.get(server.url("/readyz"), timeout=1.0).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    server.stop(signal.SIGKILL)
    raise AssertionError(f"runtime not ready within {ready_timeout}s:\n{server.output()}")


def serve_project(project: Path, tool: str, tmp_path_factory: pytest.TempPathFactory) -> RuntimeProcess:
    """`pixell build` (`tool`: kit or sdk) a project folder, then serve the package."""
    tmp = tmp_path_factory.mktemp(f"{project.name}-{tool}")
    return start([str(build_apkg(project, tmp, tool=tool))], tmp)


@pytest.fixture
def runtime_factory(tmp_path: Path) -> Iterator:
    """Start runtimes for one test; all are stopped afterwards."""
    started: list[RuntimeProcess] = []

    def factory(args: list[str], **kwargs: object) -> RuntimeProcess:
        server = start(args, tmp_path / f"rt{len(started)}", **kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop(signal.SIGKILL, timeout=5)


@pytest.fixture(scope="session")
def testbed_apkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/integration/runtime/testbed-agent (sdk 0.5: it uses `http_server`, which kit 0.4 refuses)."""
    return build_apkg(HERE / "testbed-agent", tmp_path_factory.mktemp("testbed"), tool="sdk")
