"""`par eventing serve` started without a Kafka it can reach says so in one line (no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.net import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


def test_an_unreachable_kafka_is_one_line() -> None:
    bootstrap = f"127.0.0.1:{free_port()}"  # nothing listens there
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "eventing", "serve", "--port", str(free_port()),
         "--insecure-no-auth"],
        cwd=ROOT, env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap},
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"par eventing serve: cannot reach Kafka at {bootstrap} (KAFKA_BOOTSTRAP_SERVERS)")
