"""Dependency preparation with the real installer (uv, from PyPI): keyed, reported, and the runtime's
own packages win over the package's copies."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from runtime.apkg import ApkgError
from runtime.prepare import find_uv, installer_command, prepare
from tests.integration.runtime.conftest import run_par, start
from tests.support.apkgs import DEMO_AGENT, build_apkg, repack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def deps_apkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo agent asking for `six` (not in the runtime) and an older `idna` (the runtime has its own)."""
    project = tmp_path_factory.mktemp("deps-project") / "demo-agent"
    shutil.copytree(DEMO_AGENT, project)
    (project / "requirements.txt").write_text("fastapi>=0.110.0\nsix==1.16.0\nidna==3.6\n")
    (project / "src" / "rest" / "index.py").write_text(
        "import idna\nimport six\n\n\ndef mount(app):\n"
        "    @app.get('/api/versions')\n"
        "    async def versions():\n"
        "        return {'six': six.__version__, 'idna': idna.__version__}\n"
    )
    return build_apkg(project, tmp_path_factory.mktemp("deps-apkg"), tool="kit")


def test_dependencies_are_installed_once_and_conflicts_reported(deps_apkg: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    prepared = prepare(deps_apkg, tmp_path / "p", progress=lines.append)
    assert any("installing 2 with uv: six==1.16.0, idna==3.6" in line for line in lines), lines
    assert prepared.deps_dir is not None and (prepared.deps_dir / "six.py").is_file()
    assert len(prepared.conflicts) == 1
    assert prepared.conflicts[0].startswith("idna 3.6 wanted by the package, the runtime has")

    stamp = prepared.deps_dir / ".requirements-sha256"
    mtime = stamp.stat().st_mtime_ns
    again: list[str] = []
    prepare(deps_apkg, tmp_path / "p", progress=again.append)
    assert again == [f"{deps_apkg.name}: already prepared in {tmp_path / 'p'}"]
    assert stamp.stat().st_mtime_ns == mtime


def test_served_package_imports_its_deps_but_the_runtime_wins(deps_apkg: Path, tmp_path: Path) -> None:
    from importlib.metadata import version

    server = start([str(deps_apkg)], tmp_path)
    try:
        got = httpx.get(server.url("/api/versions")).json()
        assert got == {"six": "1.16.0", "idna": version("idna")}
        conflicts = [line for line in server.log_lines() if line["msg"].startswith("dependency conflict")]
        assert conflicts and "idna 3.6" in conflicts[0]["msg"]
    finally:
        server.stop()


def test_prepare_cli_shows_progress_and_conflicts(deps_apkg: Path, tmp_path: Path) -> None:
    result = run_par(["runtime", "prepare", str(deps_apkg), "--into", str(tmp_path / "p")], tmp_path / "work")
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stderr.split())
    assert "installing 2 with uv" in out and "conflict: idna 3.6" in out


def test_uninstallable_requirement_is_a_clear_error(tmp_path: Path, deps_apkg: Path) -> None:
    pkg = repack(deps_apkg, tmp_path / "bad.apkg", replace={"requirements.txt": b"not a requirement ===\n"})
    with pytest.raises(ApkgError) as caught:
        prepare(pkg, tmp_path / "p")
    assert caught.value.code == "bad_requirements" and "not a requirement" in str(caught.value)
    assert not (tmp_path / "p").exists()
    missing = repack(
        deps_apkg,
        tmp_path / "missing.apkg",
        replace={"requirements.txt": b"six @ file:///nonexistent/six-1.0-py3-none-any.whl\n"},
    )
    with pytest.raises(ApkgError) as caught:
        prepare(missing, tmp_path / "p")
    assert caught.value.code == "dependency_install_failed" and "nonexistent" in str(caught.value)
    assert not (tmp_path / "p").exists()


def test_pip_installs_when_uv_is_absent(tmp_path: Path) -> None:
    assert find_uv() is not None  # scripts/bootstrap.sh puts uv in the venv: the default path
    (tmp_path / "req.txt").write_text("six==1.16.0\n")
    command = installer_command(tmp_path / "req.txt", tmp_path / "deps", uv=None)
    assert command[1:4] == ["-m", "pip", "install"]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    assert (tmp_path / "deps" / "six.py").is_file()
