"""The command lines: help everywhere, and `par runtime serve` taking the fast path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.runtime.conftest import run_par

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["runtime", "serve", "--help"], "Serve one agent"),
        (["runtime", "prepare", "--help"], "--into"),
        (["runtime", "--help"], "prepare"),
    ],
)
def test_help(args: list[str], words: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("par")), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and words in result.stdout


def test_python_m_runtime_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "runtime", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "AGENT_PACKAGE_PATH" in result.stdout


def test_serve_rejects_unknown_options(tmp_path: Path) -> None:
    result = run_par(["runtime", "serve", "pkg.apkg", "--bogus"], tmp_path / "work", 60)
    assert result.returncode == 2 and "unrecognized arguments: --bogus" in result.stderr
