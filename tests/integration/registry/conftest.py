"""Packages for the registry tests: the real demo APKG and variants repacked from it."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.support.apkgs import repack


def with_version(source: Path, dest: Path, version: str) -> Path:
    """The same real package announcing another metadata.version in agent.yaml."""
    with zipfile.ZipFile(source) as zf:
        manifest = zf.read("agent.yaml").decode()
    assert "version: 0.1.0" in manifest
    return repack(
        source,
        dest,
        replace={"agent.yaml": manifest.replace("version: 0.1.0", f"version: {version}").encode()},
    )


@pytest.fixture(scope="session")
def demo_apkg_v2(demo_apkg_kit: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return with_version(demo_apkg_kit, tmp_path_factory.mktemp("v2") / "demo-agent-0.2.0.apkg", "0.2.0")
