"""The runtime image as a Knative Service runs it: UID 10001, read-only root, /tmp an emptyDir,
PORT and K_* set, the package fetched from PACKAGE_URL and checked against PACKAGE_SHA256."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import subprocess
import threading
import time
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.integration.images.conftest import ROOT, UID, Container, FileServer, Images, podman
from tests.support.apkgs import DEMO_AGENT, build_apkg
from tests.support.net import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(2700)]

TESTBED = Path(__file__).parents[1] / "runtime" / "testbed-agent"


def knative_env(port: int, service: str, url: str, sha256: str) -> dict[str, str]:
    """What Knative Serving sets in a revision's container, plus the registry's package variables."""
    return {
        "PORT": str(port),
        "K_SERVICE": service,
        "K_CONFIGURATION": service,
        "K_REVISION": f"{service}-00001",
        "PACKAGE_URL": url,
        "PACKAGE_SHA256": sha256,
    }


def start(images: Images, containers: list[Container], env: dict[str, str]) -> Container:
    container = Container(images.runtime, env)
    containers.append(container)
    return container


def test_runtime_serves_a_package_from_package_url(
    images: Images,
    containers: list[Container],
    file_server: FileServer,
    demo_apkg_kit: Path,
    record_property: pytest.RecordProperty,
) -> None:
    url, sha = file_server.add("/demo-agent.apkg", demo_apkg_kit.read_bytes())
    port = free_port()
    container = start(images, containers, knative_env(port, "demo-agent", url, sha))
    ready = container.wait_http(f"http://127.0.0.1:{port}/readyz")
    record_property("readyz_seconds", round(ready, 2))
    print(f"runtime image: /readyz 200 {ready:.2f} s after podman run")
    assert ready < 30

    answer = httpx.post(f"http://127.0.0.1:{port}/invoke", json={"x": 1}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["received"] == {"x": 1}
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200

    probe = "id -u; command -v uv || echo no-uv; touch /x"
    inside = podman("exec", container.name, "sh", "-c", probe, check=False)
    assert inside.stdout.split()[:2] == [UID, "no-uv"], inside
    assert "Read-only file system" in inside.stderr
    config = podman("image", "inspect", "--format", "{{.Config.User}}", images.runtime).stdout.strip()
    assert config == UID  # what runAsNonRoot checks, without runAsUser


def test_a_wrong_sha256_is_refused_with_a_clear_log_line(
    images: Images, containers: list[Container], file_server: FileServer, demo_apkg_kit: Path
) -> None:
    url, sha = file_server.add("/pinned.apkg", demo_apkg_kit.read_bytes())
    wrong = "0" * 64
    container = start(images, containers, knative_env(free_port(), "demo-agent", url, wrong))
    code = container.exit_code(timeout=90)
    logs = container.logs()
    assert code != 0, logs
    lines = [line for line in logs.splitlines() if "sha256_mismatch" in line]
    assert lines, logs
    assert sha in lines[0] and wrong in lines[0], lines[0]


def test_sigterm_drains_an_in_flight_request_and_exits_0(
    images: Images,
    containers: list[Container],
    file_server: FileServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    apkg = build_apkg(TESTBED, tmp_path_factory.mktemp("testbed"), tool="sdk")
    url, sha = file_server.add("/testbed.apkg", apkg.read_bytes())
    port = free_port()
    container = start(images, containers, knative_env(port, "testbed-agent", url, sha))
    container.wait_http(f"http://127.0.0.1:{port}/readyz")
    base = f"http://127.0.0.1:{port}"

    names = ["K_SERVICE", "K_REVISION", "K_CONFIGURATION", "HOME", "PORT"]
    seen = httpx.post(f"{base}/invoke", json={"do": "env", "names": names}, timeout=30).json()
    assert seen == {
        "K_SERVICE": "testbed-agent",
        "K_REVISION": "testbed-agent-00001",
        "K_CONFIGURATION": "testbed-agent",
        "HOME": "/tmp",
        "PORT": str(port),
    }

    out: dict[str, httpx.Response] = {}

    def call() -> None:
        out["response"] = httpx.post(f"{base}/invoke", json={"do": "sleep", "seconds": 2}, timeout=30)

    worker = threading.Thread(target=call)
    worker.start()
    time.sleep(0.7)
    podman("kill", "--signal", "TERM", container.name)  # what the kubelet sends first
    assert container.exit_code(timeout=30) == 0, container.logs()
    worker.join(10)
    assert out["response"].status_code == 200 and out["response"].json() == {"slept": 2}


def _wheel(name: str, version: str, module: str, source: str) -> tuple[str, bytes]:
    """A minimal pure-Python wheel (no index needed: served from loopback as a direct URL)."""
    dist = f"{name.replace('-', '_')}-{version}"
    files = {
        f"{module}.py": source.encode(),
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: par-tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return f"{dist}-py3-none-any.whl", buffer.getvalue()


def test_requirements_the_runtime_lacks_are_installed_at_start_with_pip(
    images: Images, containers: list[Container], file_server: FileServer, tmp_path: Path
) -> None:
    """No uv in the runtime image: pip in its venv installs a package's requirements into /tmp."""
    filename, wheel = _wheel("par-it-probe", "1.0", "par_it_probe", 'VALUE = "installed at start"\n')
    wheel_url, _ = file_server.add(f"/wheels/{filename}", wheel)
    project = tmp_path / "probe-agent"
    shutil.copytree(DEMO_AGENT, project)
    manifest = (project / "agent.yaml").read_text().replace("name: demo-agent", "name: probe-agent")
    (project / "agent.yaml").write_text(manifest)
    (project / "requirements.txt").write_text(f"fastapi>=0.110.0\npar-it-probe @ {wheel_url}\n")
    (project / "src" / "main.py").write_text(
        "def handler(context):\n"
        "    import par_it_probe\n"
        "    return {'probe': par_it_probe.VALUE, 'file': par_it_probe.__file__}\n"
    )
    apkg = build_apkg(project, tmp_path / "out")
    url, sha = file_server.add("/probe-agent.apkg", apkg.read_bytes())
    port = free_port()
    container = start(images, containers, knative_env(port, "probe-agent", url, sha))
    container.wait_http(f"http://127.0.0.1:{port}/readyz", timeout=120)
    answer = httpx.post(f"http://127.0.0.1:{port}/invoke", json={}, timeout=30).json()
    assert answer["probe"] == "installed at start"
    assert answer["file"].startswith("/tmp/"), answer
    logs = container.logs()
    assert "with python: par-it-probe @" in logs, logs


def test_a_baked_package_is_served_without_package_url(
    images: Images, containers: list[Container], demo_apkg_kit: Path
) -> None:
    """`--build-arg APKG=...`: prepared in the build, served from AGENT_PACKAGE_PATH."""
    name = f"par-it-{uuid.uuid4().hex[:8]}"
    apkg = ROOT / "dist" / f"{name}.apkg"  # the build context lets in dist/ and *.apkg
    apkg.parent.mkdir(exist_ok=True)
    shutil.copyfile(demo_apkg_kit, apkg)
    tag = f"dev.local/par/{name}:test"
    ca = os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
    command = [
        "buildah", "bud", "--layers", "--force-rm", "--pull=never", "--network=host", "--target", "runtime",
        "--build-arg", f"PYTHON_IMAGE={images.python}", "--build-arg", f"UV_IMAGE={images.uv}",
        "--build-arg", f"APKG=dist/{apkg.name}", "-t", tag, "-f", str(ROOT / "Dockerfile"),
        *(["--secret", f"id=ca,src={ca}"] if Path(ca).is_file() else []), str(ROOT),
    ]  # fmt: skip
    try:
        build = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
        assert build.returncode == 0, build.stderr[-4000:]
        port = free_port()
        container = Container(tag, {"PORT": str(port), "K_SERVICE": "demo-agent"})
        containers.append(container)
        container.wait_http(f"http://127.0.0.1:{port}/readyz")
        answer = httpx.post(f"http://127.0.0.1:{port}/invoke", json={"baked": True}, timeout=30)
        assert answer.json()["received"] == {"baked": True}
        assert "downloading" not in container.logs()
    finally:
        apkg.unlink(missing_ok=True)
        for c in containers:
            c.remove()
        subprocess.run(["buildah", "rmi", tag], capture_output=True, check=False, timeout=120)
