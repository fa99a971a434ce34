"""scripts/images.sh without building: valid, shellcheck-clean bash, and image tags that change
exactly when a build input changes (`names` computes them and builds nothing)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.dockerfile import ROOT

SCRIPT = ROOT / "scripts" / "images.sh"
INPUTS = ["Dockerfile", ".dockerignore", "pyproject.toml", "uv.lock", "README.md"]
PACKAGES = ["runtime", "gateway", "eventing", "serving", "registry", "cli", "examples"]


def test_bash_syntax() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed (dev check)")
def test_shellcheck_clean() -> None:
    subprocess.run(["shellcheck", str(SCRIPT)], check=True)


def _names(root: Path, **env: str) -> dict[str, str]:
    out = subprocess.run(
        ["bash", str(root / "scripts" / "images.sh"), "names"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PAR_IMAGES_CACHE": str(root / "cache"), **env},
    )
    return dict(line.split("=", 1) for line in out.stdout.splitlines())


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the build inputs and the script (the script finds them beside itself)."""
    for name in INPUTS:
        shutil.copy(ROOT / name, tmp_path / name)
    for name in PACKAGES:
        shutil.copytree(
            ROOT / name, tmp_path / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    (tmp_path / "scripts").mkdir()
    shutil.copy(SCRIPT, tmp_path / "scripts" / "images.sh")
    (tmp_path / "tests").mkdir()
    return tmp_path


def test_names_are_the_project_version_and_a_hash_of_every_input(tree: Path) -> None:
    names = _names(tree)
    assert set(names) == {"PYTHON_IMAGE", "UV_IMAGE", "RUNTIME_IMAGE", "PLATFORM_IMAGE"}
    assert names["UV_IMAGE"].startswith("dev.local/par/uv:")
    tag = names["RUNTIME_IMAGE"].removeprefix("dev.local/par/runtime:")
    assert names["PLATFORM_IMAGE"] == f"dev.local/par/platform:{tag}"
    assert tag.startswith("0.1.0-") and len(tag) == len("0.1.0-") + 12
    assert _names(tree) == names  # stable

    (tree / "tests" / "test_x.py").write_text("not an input\n")
    (tree / "runtime" / "__pycache__").mkdir(exist_ok=True)
    (tree / "runtime" / "__pycache__" / "x.pyc").write_bytes(b"ignored by .dockerignore")
    assert _names(tree) == names

    seen = {tag}
    for changed in ["Dockerfile", "uv.lock", "runtime/app.py", "registry/new_module.py", "examples/new.txt"]:
        path = tree / changed
        path.write_text((path.read_text() if path.exists() else "") + "\n# changed\n")
        tag = _names(tree)["RUNTIME_IMAGE"].rsplit(":", 1)[1]
        assert tag not in seen, changed
        seen.add(tag)
    mirrored = _names(tree, UV_INDEX_URL="http://mirror.invalid/simple")
    assert mirrored["RUNTIME_IMAGE"].rsplit(":", 1)[1] not in seen


def test_uv_image_is_the_locked_uv() -> None:
    import tomllib

    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    (uv,) = [p for p in lock["package"] if p["name"] == "uv"]
    assert _names(ROOT, PAR_IMAGES_CACHE="/nonexistent")["UV_IMAGE"] == f"dev.local/par/uv:{uv['version']}"


def test_unknown_command_is_refused() -> None:
    result = subprocess.run(["bash", str(SCRIPT), "nope"], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and "unknown command nope" in result.stderr
    result = subprocess.run(["bash", str(SCRIPT), "archive"], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and "archive DIR" in result.stderr
