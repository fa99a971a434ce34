"""PAR installed like any Python tool: the wheel built from this tree, installed into a fresh virtual
environment outside the checkout (with pixell-kit, which `par up --demo` builds the examples with),
runs `par up --demo`, `par deploy`, `par invoke` and serves the console with its assets: every
file PAR reads at run time ships in the wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.apkgs import ROOT, demo_variant
from tests.support.platform import ParUp

pytestmark = [pytest.mark.integration, pytest.mark.slow]
UV = str(Path(sys.executable).with_name("uv"))


def _run(*args: str | Path, cwd: Path = ROOT) -> None:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel in a fresh venv, its dependencies pinned to uv.lock as CI tested them; its python."""
    tmp = tmp_path_factory.mktemp("wheel")
    _run(UV, "build", "--wheel", "--quiet", "--out-dir", tmp / "dist", ROOT)
    (wheel,) = (tmp / "dist").glob("par-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        metadata = zf.read("par-0.1.0.dist-info/METADATA").decode()
        assert "cli/up/examples/demo-agent/.env" in zf.namelist()
    assert "License-Expression: Apache-2.0" in metadata and "Classifier: " in metadata
    constraints = tmp / "constraints.txt"
    _run(UV, "export", "--frozen", "--no-emit-project", "--no-hashes", "--quiet", "-o", constraints)
    _run(UV, "venv", "--quiet", "--python", sys.executable, tmp / "venv")
    python = tmp / "venv" / "bin" / "python"
    _run(UV, "pip", "install", "--quiet", "--python", python, wheel, "pixell-kit==0.4.12",
         "--constraint", constraints)
    return python


@pytest.fixture(scope="module")
def platform(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ParUp]:
    away = tmp_path_factory.mktemp("elsewhere")  # not the checkout: nothing of it on sys.path
    running = ParUp(away / "data", python=str(installed), cwd=away).start("--demo", timeout=300)
    try:
        yield running
    finally:
        running.stop()
        running.kill()


def test_the_wheel_runs_the_platform_outside_the_checkout(
    installed: Path, platform: ParUp, tmp_path: Path
) -> None:
    where = subprocess.run([installed, "-c", "import cli; print(cli.__file__)"], cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(installed.parents[1])), where  # the installed copy, not the checkout's

    for agent in ("demo-agent", "event-emitter", "event-receiver"):
        platform.wait_phase(agent, "ready", timeout=120)
    invoked = platform.cli("invoke", "demo-agent", "--data", '{"from": "wheel"}')
    assert '"from":"wheel"' in invoked.stdout.replace(" ", "")

    v2 = demo_variant(tmp_path, "wheel-agent", "0.1.0", "def handler(context):\n    return {'wheel': True}\n")
    assert "wheel-agent 0.1.0 is ready" in platform.cli("deploy", str(v2)).stdout
    assert platform.call("wheel-agent", json_body={}).json() == {"wheel": True}

    console = platform.info["registry_url"] + "/console"
    page = httpx.get(console + "/login", timeout=30, follow_redirects=True)
    assert page.status_code == 200 and "<form" in page.text
    assert "/console/static/console.css" in page.text
    for asset in ("console.css", "console.js"):
        assert httpx.get(f"{console}/static/{asset}", timeout=30).status_code == 200, asset
