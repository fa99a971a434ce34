"""Preparation's own limits, on the real installer: a build that never ends is stopped at
PAR_PREPARE_TIMEOUT with its whole process group, and the deploy fails with one line."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

import pytest

from serving import Controller, PrepareFailed, ServingSettings
from tests.support.apkgs import DEMO_AGENT, build_apkg
from tests.support.sdist import build_sdist, serve_folder

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SLEEPER = '''
import time

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    time.sleep(600)
'''


async def test_a_build_that_never_ends_is_stopped_at_the_timeout(tmp_path: Path) -> None:
    index = tmp_path / "index"
    index.mkdir()
    build_sdist(index, "sleeper", SLEEPER)
    with serve_folder(index) as port:
        project = tmp_path / "sleepy-agent"
        shutil.copytree(DEMO_AGENT, project)
        (project / "requirements.txt").write_text(f"sleeper @ http://127.0.0.1:{port}/sleeper-0.1.tar.gz\n")
        apkg = build_apkg(project, tmp_path / "out")
        settings = ServingSettings(
            data_dir=tmp_path / "data", prepare_timeout=8, outbound_ports=(53, 443, port)
        )
        sha = hashlib.sha256(apkg.read_bytes()).hexdigest()
        async with Controller(settings) as controller:
            started = time.monotonic()
            with pytest.raises(PrepareFailed, match=r"stopped after 8 s \(PAR_PREPARE_TIMEOUT\)"):
                await controller.preparer.prepare(sha, apkg, lambda _line: None)
            assert time.monotonic() - started < 20
    assert list((tmp_path / "data" / "prepared").iterdir()) == []
    sandboxes = str(tmp_path / "data" / "instances").encode()
    assert not [pid for pid in _pids() if sandboxes in _environ(pid)], "a build process outlived the timeout"


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:  # gone meanwhile, or not ours to read
        return b""


async def test_progress_is_whole_lines_naming_where_the_package_is_kept(tmp_path: Path) -> None:
    project = tmp_path / "chatty-agent"
    shutil.copytree(DEMO_AGENT, project)
    (project / "requirements.txt").write_text("six==1.16.0\n")  # not in the runtime: installed
    apkg = build_apkg(project, tmp_path / "out")
    sha = hashlib.sha256(apkg.read_bytes()).hexdigest()
    lines: list[str] = []
    async with Controller(ServingSettings(data_dir=tmp_path / "data")) as controller:
        prepared = await controller.preparer.prepare(sha, apkg, lines.append)
    said = "\n".join(lines)
    assert "dependencies: installing 1 with uv: six==1.16.0" in lines, said
    assert f"demo-agent 0.1.0: prepared in {prepared}" in lines, said
    assert ".prepare-" not in said and "cli.py:" not in said, said  # no staging path, no rich columns
