"""The images of scripts/images.sh, run with podman the way Knative and Kubernetes run them: a numeric
non-root user, a read-only root filesystem with /tmp as an emptyDir, every capability dropped, no
privilege escalation, PORT and the K_* variables set. Host networking keeps it simple: the test
serves packages on loopback and reaches the container's port there.

The session builds the images first (scripts/images.sh: a few minutes the first time, seconds when
nothing changed). Without buildah and podman the tests skip, except under CI=true, where the script
runs anyway (it installs them with apt-get) and any failure fails."""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.support.dockerfile import ROOT

SCRIPT = ROOT / "scripts" / "images.sh"
UID = "10001"


@dataclass(frozen=True)
class Images:
    runtime: str
    platform: str
    python: str  # the base images the script made (PYTHON_IMAGE, UV_IMAGE build args)
    uv: str
    build_seconds: float


@pytest.fixture(scope="session")
def images() -> Images:
    tools = [t for t in ("buildah", "podman") if shutil.which(t) is None]
    if tools and not os.environ.get("CI"):
        pytest.skip(f"{' and '.join(tools)} not installed here (scripts/images.sh installs them, as root)")
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(SCRIPT), "build"], capture_output=True, text=True, timeout=2400, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"scripts/images.sh failed ({result.returncode}):\n{result.stderr[-6000:]}")
    names = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    return Images(
        names["RUNTIME_IMAGE"],
        names["PLATFORM_IMAGE"],
        names["PYTHON_IMAGE"],
        names["UV_IMAGE"],
        time.monotonic() - started,
    )


def _ulimits() -> list[str]:
    """podman's default rlimits are higher than a container host may grant (rlimits can only be
    lowered there): ask for what this process has."""
    nofile = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 65536)
    return ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", "nproc=8192:8192"]


# cgroupfs and runc: what works on a container host without systemd (crun refuses hybrid cgroups).
PODMAN = ["podman", "--cgroup-manager=cgroupfs", "--events-backend=file", "--runtime=runc"]


def podman(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout, check=check)


class Container:
    """One detached container, as a Knative Service's pod would run it."""

    def __init__(self, image: str, env: dict[str, str], command: list[str] | None = None) -> None:
        self.name = f"par-it-{uuid.uuid4().hex[:10]}"
        args = [
            "run", "--detach", "--name", self.name, "--network", "host",
            "--user", UID,  # runAsUser as the image sets it; runAsNonRoot checks it is numeric
            "--read-only", "--read-only-tmpfs=false",  # readOnlyRootFilesystem
            "--tmpfs", "/tmp:rw,mode=1777,size=256m",  # the /tmp emptyDir
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            *_ulimits(),
        ]  # fmt: skip
        for key, value in env.items():
            args += ["--env", f"{key}={value}"]
        self.started = time.monotonic()
        podman(*args, image, *(command or []))

    def logs(self) -> str:
        result = podman("logs", self.name, check=False)
        return result.stdout + result.stderr

    def exit_code(self, timeout: float) -> int:
        """Wait for the container to stop; its exit code."""
        result = podman("wait", self.name, timeout=timeout)
        return int(result.stdout.strip().splitlines()[-1])

    def running(self) -> bool:
        result = podman("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return result.stdout.strip() == "true"

    def wait_http(self, url: str, timeout: float = 60.0) -> float:
        """Poll until `url` answers 200; seconds since `podman run`. Fails early if the container exits."""
        deadline = time.monotonic() + timeout
        last: object = None
        checked = time.monotonic()
        while time.monotonic() < deadline:
            try:
                response = httpx.get(url, timeout=2)
                if response.status_code == 200:
                    return time.monotonic() - self.started
                last = response.status_code
            except httpx.HTTPError as exc:
                last = exc
            if time.monotonic() - checked > 1:  # `podman inspect` is not free: once a second
                checked = time.monotonic()
                if not self.running():
                    raise AssertionError(f"{self.name} exited before {url} answered:\n{self.logs()}")
            time.sleep(0.02)
        raise AssertionError(f"{url}: no 200 within {timeout} s (last {last!r}):\n{self.logs()}")

    def remove(self) -> None:
        podman("rm", "--force", "--time", "2", self.name, check=False, timeout=60)


@pytest.fixture
def containers() -> Iterator[list[Container]]:
    """Containers started by a test; removed after it, whatever happened."""
    started: list[Container] = []
    yield started
    for container in started:
        container.remove()


class FileServer:
    """Loopback HTTP server for packages and wheels: path -> bytes."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def add(self, path: str, body: bytes) -> tuple[str, str]:
        """Serve `body` at `path`: its URL and SHA-256."""
        self.files[path] = body
        return self.base + path, hashlib.sha256(body).hexdigest()


@pytest.fixture(scope="session")
def file_server() -> Iterator[FileServer]:
    server = FileServer()
    yield server
    server.httpd.shutdown()
