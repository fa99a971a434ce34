"""Real APKGs for tests, built by the real `pixell build` of pixell-kit 0.4 and pixell-sdk 0.5.

Builds are cached under `.cache/test-apkgs/<tool>-<hash of the project's files>/`, so a second test
session (or a second fixture asking for the same project) does no work.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO_AGENT = ROOT / "examples" / "demo-agent"
CACHE = ROOT / ".cache" / "test-apkgs"
TOOLS = {
    "kit": ROOT / ".cache" / "tools" / "pixell-kit" / "bin" / "pixell",
    "sdk": ROOT / ".cache" / "tools" / "pixell-sdk" / "bin" / "pixell",
}
_SKIP_PARTS = {"__pycache__", "dist", ".pytest_cache"}


def project_hash(project_dir: Path) -> str:
    """SHA-256 over every source file of a pixell project (relative path and bytes)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in project_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(project_dir)
        if _SKIP_PARTS.intersection(rel.parts) or path.suffix in {".pyc", ".apkg"}:
            continue
        digest.update(rel.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def build_apkg(project_dir: Path, out_dir: Path, tool: str = "kit") -> Path:
    """Build `project_dir` with the real `pixell build` of `tool` ("kit" or "sdk"); return the APKG path.

    The result is cached by project content; it is copied into `out_dir`.
    """
    project_dir, out_dir = Path(project_dir), Path(out_dir)
    pixell = TOOLS[tool]
    if not pixell.exists():
        raise FileNotFoundError(f"{pixell} missing: run scripts/bootstrap.sh --dev")
    cached_dir = CACHE / f"{tool}-{project_hash(project_dir)}"
    cached = next(cached_dir.glob("*.apkg"), None) if cached_dir.is_dir() else None
    if cached is None:
        CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
            result = subprocess.run(
                [str(pixell), "build", "-p", str(project_dir), "-o", tmp],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            built = next(Path(tmp).glob("*.apkg"), None)
            if result.returncode != 0 or built is None:
                raise RuntimeError(
                    f"pixell ({tool}) build of {project_dir} failed:\n{result.stdout}\n{result.stderr}"
                )
            staging = Path(tmp) / "done"
            staging.mkdir()
            built.rename(staging / built.name)
            shutil.rmtree(cached_dir, ignore_errors=True)
            staging.rename(cached_dir)
        cached = next(cached_dir.glob("*.apkg"))
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / cached.name
    if target.resolve() != cached.resolve():
        shutil.copyfile(cached, target)
    return target


@pytest.fixture(scope="session")
def demo_apkg_kit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/demo-agent built by pixell-kit 0.4 (layout with dist/, setup.py, deploy.json)."""
    return build_apkg(DEMO_AGENT, tmp_path_factory.mktemp("apkg-kit"), tool="kit")


@pytest.fixture(scope="session")
def demo_apkg_sdk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/demo-agent built by pixell-sdk 0.5 (surface files and ui/ at the root)."""
    return build_apkg(DEMO_AGENT, tmp_path_factory.mktemp("apkg-sdk"), tool="sdk")


def repack(
    source: Path,
    dest: Path,
    *,
    replace: dict[str, bytes] | None = None,
    drop: set[str] | None = None,
    extra: list[tuple[str | zipfile.ZipInfo, bytes]] | None = None,
) -> Path:
    """Copy a real APKG entry by entry, replacing/dropping some and appending `extra` ones.

    Hostile packages start from a real one so that only the hostile part differs.
    """
    replace, drop = dict(replace or {}), drop or set()
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            if info.filename not in drop:
                out.writestr(info, replace.pop(info.filename, None) or src.read(info))
        for name, data in [*replace.items(), *(extra or [])]:
            out.writestr(name, data)
    return dest


def unix_entry(name: str, mode: int) -> zipfile.ZipInfo:
    """A ZIP entry carrying a Unix file type (symlink, FIFO, ...) in its external attributes."""
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    return info


def demo_variant(tmp: Path, name: str, version: str, main_py: str, rest_py: str | None = None) -> Path:
    """A copy of examples/demo-agent with another version, entrypoint module and REST module."""
    project = tmp / f"{name}-{version}"
    shutil.copytree(DEMO_AGENT, project)
    manifest = (project / "agent.yaml").read_text()
    manifest = manifest.replace("name: demo-agent", f"name: {name}")
    manifest = manifest.replace("version: 0.1.0", f"version: {version}")
    (project / "agent.yaml").write_text(manifest)
    (project / "src" / "main.py").write_text(main_py)
    if rest_py is not None:
        (project / "src" / "rest" / "index.py").write_text(rest_py)
    return build_apkg(project, tmp / "out")


def zip_folder(folder: Path, dest: Path) -> Path:
    """Zip a folder by hand, entries at the archive root: the flat layout the original runtime served
    (no `pixell build`, so no dist/, .pixell/ or setup.py)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as out:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            rel = path.relative_to(folder)
            if not _SKIP_PARTS.intersection(rel.parts) and path.suffix != ".pyc":
                out.write(path, rel.as_posix())
    return dest
