"""`par registry serve` started without what it needs says so in one line (no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.net import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    env = {**os.environ, "DATABASE_URL": f"postgresql://par:hunter2@127.0.0.1:{port}/par"}
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "registry", "serve", "--data-dir", str(tmp_path), "--port", "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"par registry serve: cannot open the database postgresql+asyncpg://par:***@127.0.0.1:{port}/par")
    assert "hunter2" not in done.stderr and "Traceback" not in done.stderr
