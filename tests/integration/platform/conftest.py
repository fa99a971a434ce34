"""Fixtures for the `par up` end-to-end tests: real APKGs of the examples and one shared platform."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.apkgs import ROOT, build_apkg
from tests.support.platform import ParUp

EXAMPLES = ROOT / "examples"
IDLE_WINDOW = 3.0  # PAR_SCALE_TO_ZERO_AFTER for the shared platform (short, but longer than a loaded
# machine takes between two requests of one test)


@pytest.fixture(scope="module")
def apkg_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("platform-apkgs")


@pytest.fixture(scope="module")
def emitter_apkg(apkg_dir: Path) -> Path:
    return build_apkg(EXAMPLES / "event-emitter", apkg_dir)


@pytest.fixture(scope="module")
def receiver_apkg(apkg_dir: Path) -> Path:
    return build_apkg(EXAMPLES / "event-receiver", apkg_dir)


def _variant(tmp: Path, name: str, version: str, main_py: str, rest_py: str | None = None) -> Path:
    """A copy of examples/demo-agent with another version, entrypoint module and REST module."""
    project = tmp / f"{name}-{version}"
    shutil.copytree(EXAMPLES / "demo-agent", project)
    manifest = (project / "agent.yaml").read_text()
    manifest = manifest.replace("name: demo-agent", f"name: {name}")
    manifest = manifest.replace("version: 0.1.0", f"version: {version}")
    (project / "agent.yaml").write_text(manifest)
    (project / "src" / "main.py").write_text(main_py)
    if rest_py is not None:
        (project / "src" / "rest" / "index.py").write_text(rest_py)
    return build_apkg(project, tmp / "out")


@pytest.fixture(scope="module")
def demo_v2_apkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _variant(
        tmp_path_factory.mktemp("v2"), "demo-agent", "0.2.0",
        'def handler(context):\n    return {"message": "Hello from v2", "received": context}\n',
    )


@pytest.fixture(scope="module")
def broken_apkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Valid package, but its entrypoint module raises on import: the runtime cannot start."""
    return _variant(
        tmp_path_factory.mktemp("broken"), "broken-agent", "0.1.0",
        'raise RuntimeError("boom: this agent cannot start")\n\n\ndef handler(context):\n    return {}\n',
    )


@pytest.fixture(scope="module")
def slow_apkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sleeps `context["sleep"]` seconds and says which process answered."""
    return _variant(
        tmp_path_factory.mktemp("slow"), "slow-agent", "0.1.0",
        "import os\nimport time\n\n\ndef handler(context):\n"
        "    time.sleep(float(context.get('sleep', 0)))\n    return {'pid': os.getpid()}\n",
    )


@pytest.fixture(scope="module")
def headers_apkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`GET /api/headers` answers the request headers exactly as the agent received them."""
    return _variant(
        tmp_path_factory.mktemp("headers"), "headers-agent", "0.1.0",
        "def handler(context):\n    return context\n",
        "from fastapi import FastAPI, Request\n\n\ndef mount(app: FastAPI) -> None:\n"
        "    @app.get('/api/headers')\n    async def headers(request: Request):\n"
        "        return [[k.decode(), v.decode()] for k, v in request.scope['headers']]\n",
    )


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ParUp]:
    running = ParUp(
        tmp_path_factory.mktemp("par") / "data", env={"PAR_SCALE_TO_ZERO_AFTER": str(IDLE_WINDOW)}
    ).start()
    try:
        yield running
    finally:
        running.stop()
        running.kill()
