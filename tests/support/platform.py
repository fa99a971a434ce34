"""A real `par up` in a subprocess, for the one-machine platform's end-to-end tests.

`ParUp` starts the command on a free gateway port and a temporary data folder, waits for the
`platform.json` it writes, and offers a registry client (admin key), a gateway client and a view
of the agent processes it runs (read from /proc: children of `par up` whose environment names
the agent in `K_SERVICE`, as Knative sets it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[2]


class ParUp:
    def __init__(
        self, data_dir: Path, env: dict[str, str] | None = None, port: int | None = None,
        python: str = sys.executable, cwd: Path = ROOT,
    ) -> None:
        """`python`/`cwd`: the installation of PAR to run and where (the checkout's by default)."""
        self.data_dir = data_dir
        self.python, self.cwd = python, cwd
        self.port = port or free_port()
        self.env = {**os.environ, "PAR_SCALE_TO_ZERO_AFTER": "60", **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}
        self.admin_key = ""
        self.log_path = data_dir.parent / f"{data_dir.name}-par-up.log"

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, *args: str, timeout: float = 60.0) -> ParUp:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [self.python, "-c", "from cli.main import main; main()", "up",
             "--data-dir", str(self.data_dir), "--port", str(self.port), *args],
            cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        marker = self.data_dir / "platform.json"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"par up exited with {self.proc.returncode}:\n{self.output()[-3000:]}")
            if marker.exists():
                self.info = json.loads(marker.read_text())
                if self.info.get("pid") == self.proc.pid:
                    self.admin_key = (self.data_dir / "admin.key").read_text().strip()
                    return self
            time.sleep(0.1)
        self.kill()
        raise TimeoutError(f"par up not ready within {timeout}s:\n{self.output()[-3000:]}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    # -- clients ----------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def registry(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.info["registry_url"], headers={"Authorization": f"Bearer {self.admin_key}"},
            timeout=60.0,
        )

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A `par` command as a user runs it: it finds the platform through its data folder."""
        env = {k: v for k, v in os.environ.items() if k not in ("PAR_REGISTRY_URL", "PAR_API_KEY")}
        env["PAR_DATA_DIR"] = str(self.data_dir)
        done = subprocess.run(
            [self.python, "-c", "from cli.main import main; main()", *args],
            env=env, cwd=self.cwd, capture_output=True, text=True, timeout=180, check=False,
        )
        if check:
            assert done.returncode == 0, done.stderr + done.stdout
        return done

    def call(
        self, agent: str, path: str = "/invoke", *, key: str | None = "admin", json_body: Any = None,
        method: str = "POST", namespace: str = "default", timeout: float = 60.0,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One request through the gateway, routed by Host like Knative; `key=None` sends none."""
        headers = {**(headers or {}), "Host": f"{agent}.{namespace}.{self.info['domain']}"}
        if key is not None:
            headers["Authorization"] = f"Bearer {self.admin_key if key == 'admin' else key}"
        return httpx.request(
            method, f"{self.info['gateway_url']}{path}", headers=headers, json=json_body, timeout=timeout
        )

    def deploy(self, apkg: Path, **deployment: Any) -> dict[str, Any]:
        """Upload an APKG and deploy its version with 100 % traffic; wait until ready."""
        with self.registry() as client, apkg.open("rb") as fh:
            uploaded = client.post("/v1/namespaces/default/packages", files={"file": (apkg.name, fh)})
            assert uploaded.status_code in (200, 201), uploaded.text
            agent, version = uploaded.json()["agent"], uploaded.json()["version"]
            response = client.put(
                f"/v1/namespaces/default/agents/{agent}/deployment", json={"version": version, **deployment}
            )
            assert response.status_code == 200, response.text
        return self.wait_phase(agent, "ready")

    def deployment(self, agent: str) -> dict[str, Any]:
        with self.registry() as client:
            response = client.get(f"/v1/namespaces/default/agents/{agent}/deployment")
            assert response.status_code == 200, response.text
            return response.json()

    def wait_phase(self, agent: str, phase: str, timeout: float = 120.0) -> dict[str, Any]:
        """Poll the deployment until `phase` (an agent not deployed yet counts as not there yet)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.registry() as client:
                response = client.get(f"/v1/namespaces/default/agents/{agent}/deployment")
            current = response.json() if response.status_code == 200 else {"status": {"phase": "absent"}}
            if current["status"]["phase"] == phase:
                return current
            if time.monotonic() > deadline:
                raise TimeoutError(f"{agent} not {phase} within {timeout}s: {current['status']}")
            time.sleep(0.2)

    # -- processes --------------------------------------------------------------------------

    def instances(self, agent: str | None = None) -> list[dict[str, Any]]:
        """The platform's own view of its instances (the local gateway's `/status`), newest state."""
        statuses = httpx.get(f"{self.info['local_gateway_url']}/status", timeout=10).json()
        return [
            instance
            for status in statuses if agent is None or status["name"] == agent
            for revision in status["revisions"]
            for instance in revision["instances"]
        ]

    def agent_pids(self, agent: str | None = None) -> list[int]:
        """Pids of the agent's instances that exist as processes under this `par up` (started
        directly or forked by the runtime template)."""
        tree = set(self.descendants())
        return [i["pid"] for i in self.instances(agent) if i["pid"] in tree and alive(i["pid"])]

    def descendants(self) -> list[int]:
        """Every process below `par up`: the broker, the runtime template, the instances."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and (ppid := parent(int(entry.name))) is not None:
                children.setdefault(ppid, []).append(int(entry.name))
        found, todo = [], list(children.get(self.pid, []))
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo += children.get(pid, [])
        return found


def parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout}s")
        time.sleep(interval)
