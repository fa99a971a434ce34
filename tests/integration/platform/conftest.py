"""Fixtures for the `par up` end-to-end tests: real APKGs of the examples and one shared platform."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.apkgs import ROOT, build_apkg, demo_variant
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


@pytest.fixture(scope="module")
def demo_v2_apkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_variant(
        tmp_path_factory.mktemp("v2"), "demo-agent", "0.2.0",
        'def handler(context):\n    return {"message": "Hello from v2", "received": context}\n',
    )


@pytest.fixture(scope="module")
def broken_apkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Valid package, but its entrypoint module raises on import: the runtime cannot start."""
    return demo_variant(
        tmp_path_factory.mktemp("broken"), "broken-agent", "0.1.0",
        'raise RuntimeError("boom: this agent cannot start")\n\n\ndef handler(context):\n    return {}\n',
    )


@pytest.fixture(scope="module")
def headers_apkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`GET /api/headers` answers the request headers exactly as the agent received them."""
    return demo_variant(
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
