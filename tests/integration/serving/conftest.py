"""Fixtures for serving's integration tests: real APKGs built from examples/demo-agent."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.apkgs import demo_variant


@pytest.fixture(scope="module")
def slow_apkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sleeps `context["sleep"]` seconds and says which process answered."""
    return demo_variant(
        tmp_path_factory.mktemp("slow"), "slow-agent", "0.1.0",
        "import os\nimport time\n\n\ndef handler(context):\n"
        "    time.sleep(float(context.get('sleep', 0)))\n    return {'pid': os.getpid()}\n",
    )
