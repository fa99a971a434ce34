"""Install-time code is agent code: `par up` prepares a package whose requirement is an sdist (a
direct reference served on loopback) whose build backend tries to read the platform's admin key
and database and another data folder's key, to write outside its folder and to call the registry.
Each attempt is refused, the deploy fails with one line naming the cause, and the platform keeps
serving. The real `par up`, the real uv building the real sdist, the real kernel mechanisms."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from serving.landlock import abi
from tests.support.apkgs import DEMO_AGENT, build_apkg
from tests.support.platform import ParUp
from tests.support.sdist import build_sdist, serve_folder

pytestmark = [pytest.mark.integration, pytest.mark.slow]

if abi() < 4 and os.environ.get("CI") != "true":
    reason = f"this kernel's Landlock ABI is {abi()}: confining preparation needs 4"
    pytest.skip(reason, allow_module_level=True)

BACKEND = '''
import socket


def _try(label, action):
    try:
        found = action()
    except OSError as exc:
        return f"{label}: {type(exc).__name__}"
    return f"{label}: ALLOWED {found!r}"

def _write(path):
    with open(path, "w") as fh:
        fh.write("planted by build code")

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    results = [
        _try("admin key", lambda: open(%(admin)r).read()),
        _try("database", lambda: open(%(db)r, "rb").read(64)),
        _try("other key", lambda: open(%(other)r).read()),
        _try("write outside", lambda: _write(%(outside)r)),
        _try("registry", lambda: socket.create_connection(("127.0.0.1", %(registry_port)d), timeout=5)),
    ]
    raise RuntimeError("hostile build: " + "; ".join(results))
'''


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A loopback file server for the sdist: (its folder, its port)."""
    folder = tmp_path / "index"
    folder.mkdir()
    with serve_folder(folder) as port:
        yield folder, port


@pytest.fixture
def platform(tmp_path: Path, served: tuple[Path, int]) -> Iterator[ParUp]:
    # The sdist's port is an outbound port packages may be fetched from, as 443 is for an index.
    env = {"PAR_OUTBOUND_PORTS": f"53,80,443,{served[1]}"}
    running = ParUp(tmp_path / "data", env=env).start()
    try:
        yield running
    finally:
        running.stop()
        running.kill()


def test_build_code_of_a_requirement_reaches_nothing_of_the_platform(
    platform: ParUp, served: tuple[Path, int], tmp_path: Path
) -> None:
    other = tmp_path / "other-par" / "admin.key"
    other.parent.mkdir()
    other.write_text("par_other_secret\n")
    outside = tmp_path / "escaped.txt"
    folder, port = served
    paths = dict(
        admin=str(platform.data_dir / "admin.key"), db=str(platform.data_dir / "registry.db"),
        other=str(other), outside=str(outside), registry_port=urlsplit(platform.info["registry_url"]).port,
    )
    build_sdist(folder, "hostile-build", BACKEND % paths)
    project = tmp_path / "hostile-agent"
    shutil.copytree(DEMO_AGENT, project)
    manifest = project / "agent.yaml"
    manifest.write_text(manifest.read_text().replace("name: demo-agent", "name: hostile-agent"))
    (project / "requirements.txt").write_text(
        f"hostile-build @ http://127.0.0.1:{port}/hostile_build-0.1.tar.gz\n"
    )
    apkg = build_apkg(project, tmp_path / "out")

    deployed = platform.cli("deploy", str(apkg), check=False)

    assert deployed.returncode != 0, deployed.stdout
    said = " ".join((deployed.stdout + deployed.stderr).replace(" | ", " ").split())  # uv wraps lines
    for attempt in ("admin key", "database", "other key", "write outside", "registry"):
        assert f"{attempt}: PermissionError" in said, said
    assert "ALLOWED" not in said and platform.admin_key not in said and "par_other_secret" not in said
    assert not outside.exists()
    assert list((platform.data_dir / "prepared").iterdir()) == []  # nothing of it kept
    assert not list((platform.data_dir / "instances").glob("prepare.*"))
    failed = [line for line in deployed.stderr.splitlines() if "hostile build" in line]
    assert len(failed) == 1, deployed.stderr

    assert platform.deploy(build_apkg(DEMO_AGENT, tmp_path / "demo"))["status"]["phase"] == "ready"
    assert platform.call("demo-agent", json_body={"x": 1}).status_code == 200


def test_requirements_from_the_index_still_install_in_the_sandbox(platform: ParUp, tmp_path: Path) -> None:
    project = tmp_path / "deps-agent"
    shutil.copytree(DEMO_AGENT, project)
    manifest = project / "agent.yaml"
    manifest.write_text(manifest.read_text().replace("name: demo-agent", "name: deps-agent"))
    (project / "requirements.txt").write_text("six==1.16.0\n")
    (project / "src" / "rest" / "index.py").write_text(
        "import six\n\n\ndef mount(app):\n"
        "    @app.get('/api/six')\n    async def version():\n        return {'six': six.__version__}\n"
    )
    deployed = platform.cli("deploy", str(build_apkg(project, tmp_path / "out")))
    assert "deps-agent 0.1.0 is ready" in deployed.stdout
    answer = platform.call("deps-agent", "/api/six", method="GET")
    assert answer.status_code == 200 and answer.json() == {"six": "1.16.0"}, answer.text
