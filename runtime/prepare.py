"""Prepare a package ahead of serving: extract it and install its dependencies.

A prepared folder is self-describing, so serving it later reads one JSON file and imports no
YAML or ZIP code:

    DIR/par-prepared.json   sha256, manifest, deploy.json, requirements hash, conflicts
    DIR/app/                the extracted package (first on sys.path)
    DIR/deps/               its dependencies (last on sys.path: the runtime's own packages win)

Dependencies are keyed by a hash of the requirements still missing from the runtime's own
environment, so preparing again does no work. `uv` is used when present, pip otherwise.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.apkg import ApkgError, Limits, check_sha256, extract, file_sha256, parse_manifest
from runtime.manifest import AgentManifest

log = logging.getLogger("runtime.prepare")

MARKER = "par-prepared.json"
_DEPS_STAMP = ".requirements-sha256"
Progress = Callable[[str], None]


@dataclass
class Prepared:
    """A package ready to load: where its code and dependencies are, and what it declares."""

    app_dir: Path
    manifest: AgentManifest
    deploy: dict[str, Any] = field(default_factory=dict)
    deps_dir: Path | None = None
    sha256: str | None = None
    conflicts: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _quiet(_: str) -> None:
    pass


def prepare(
    apkg: str | os.PathLike[str],
    into: str | os.PathLike[str],
    *,
    limits: Limits | None = None,
    expected_sha256: str | None = None,
    progress: Progress = _quiet,
) -> Prepared:
    """Extract `apkg` into `into/app` and install its missing requirements into `into/deps`."""
    apkg, into = Path(apkg), Path(into)
    if not apkg.is_file():
        raise ApkgError("not_found", f"{apkg}: no such package file")
    sha256 = file_sha256(apkg)
    check_sha256(sha256, expected_sha256, str(apkg))
    existing = load_prepared(into) if (into / MARKER).is_file() else None
    if existing is not None and existing.sha256 == sha256:
        progress(f"{apkg.name}: already prepared in {into}")
        return existing
    if existing is None and into.exists() and any(into.iterdir()):
        raise ApkgError("target_not_empty", f"{into}: not empty and not a prepared package folder")
    progress(f"{apkg.name}: checking and extracting")
    created = not into.exists()
    into.mkdir(parents=True, exist_ok=True)
    try:
        prepared = _prepare_into(apkg, into, limits, progress)
    except BaseException:
        if created:
            shutil.rmtree(into, ignore_errors=True)
        raise
    progress(f"{prepared.manifest.name} {prepared.manifest.version}: prepared in {into}")
    return prepared


def _prepare_into(apkg: Path, into: Path, limits: Limits | None, progress: Progress) -> Prepared:
    (into / MARKER).unlink(missing_ok=True)  # not a prepared folder again until this completes
    staging = into / "app.partial"
    shutil.rmtree(staging, ignore_errors=True)
    info = extract(apkg, staging, limits)
    shutil.rmtree(into / "app", ignore_errors=True)
    staging.rename(into / "app")
    prepared = Prepared(
        app_dir=into / "app",
        manifest=info.manifest,
        deploy=info.deploy,
        sha256=info.sha256,
        warnings=list(info.warnings),
    )
    install_dependencies(prepared, into / "deps", progress)
    _write_marker(into, prepared)
    return prepared


def load_prepared(folder: Path) -> Prepared:
    """Read a folder written by `prepare` (JSON only: the fast path of a cold start)."""
    marker = json.loads((folder / MARKER).read_text())
    manifest = AgentManifest.model_validate(marker["manifest"])
    deps = folder / "deps"
    return Prepared(
        app_dir=folder / "app",
        manifest=manifest,
        deploy=marker.get("deploy", {}),
        deps_dir=deps if deps.is_dir() else None,
        sha256=marker.get("sha256"),
        conflicts=marker.get("conflicts", []),
        warnings=marker.get("warnings", []),
    )


def load_project(folder: Path) -> Prepared:
    """An unpacked package or a pixell project folder, served in place (its dependencies must
    already be importable)."""
    import yaml

    manifest, warnings = parse_manifest(yaml.safe_load((folder / "agent.yaml").read_text()))
    deploy_file = folder / "deploy.json"
    deploy = json.loads(deploy_file.read_text()) if deploy_file.is_file() else {}
    return Prepared(app_dir=folder, manifest=manifest, deploy=deploy, warnings=warnings)


def _write_marker(into: Path, prepared: Prepared) -> None:
    data = {
        "format": 1,
        "sha256": prepared.sha256,
        "manifest": prepared.manifest.model_dump(mode="json", exclude_none=True),
        "deploy": prepared.deploy,
        "conflicts": prepared.conflicts,
        "warnings": prepared.warnings,
    }
    tmp = into / f"{MARKER}.partial"
    tmp.write_text(json.dumps(data, indent=2))
    tmp.rename(into / MARKER)


def requirements_of(app_dir: Path, manifest: AgentManifest) -> list[str]:
    """requirements.txt, else agent.yaml `dependencies`, else pyproject.toml `[project] dependencies`."""
    req_file = app_dir / "requirements.txt"
    if req_file.is_file():
        lines = req_file.read_text().splitlines()
    elif manifest.dependencies:
        lines = list(manifest.dependencies)
    elif (app_dir / "pyproject.toml").is_file():
        import tomllib

        project = tomllib.loads((app_dir / "pyproject.toml").read_text()).get("project", {})
        lines = list(project.get("dependencies", []))
    else:
        lines = []
    found = []
    for line in lines:
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            log.warning(
                "requirements: option line %r ignored (only requirement specifiers are installed)", line
            )
            continue
        found.append(line)
    return found


def missing_requirements(requirements: list[str]) -> list[str]:
    """The requirements the runtime's own environment does not already satisfy."""
    from importlib import metadata

    from packaging.requirements import InvalidRequirement, Requirement

    missing = []
    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement as exc:
            raise ApkgError("bad_requirements", f"requirement {text!r} is invalid: {exc}") from exc
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            have = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            missing.append(text)
            continue
        if req.url or not req.specifier.contains(have, prereleases=True):
            missing.append(text)
    return missing


def install_dependencies(prepared: Prepared, deps_dir: Path, progress: Progress = _quiet) -> None:
    """Install what is missing into `deps_dir`, unless the same set is already there."""
    missing = missing_requirements(requirements_of(prepared.app_dir, prepared.manifest))
    if not missing:
        shutil.rmtree(deps_dir, ignore_errors=True)
        progress("dependencies: all provided by the runtime")
        return
    key = hashlib.sha256("\n".join([sys.version, *sorted(missing)]).encode()).hexdigest()
    stamp = deps_dir / _DEPS_STAMP
    if stamp.is_file() and stamp.read_text() == key:
        progress(f"dependencies: {len(missing)} already installed")
    else:
        staging = deps_dir.with_name(deps_dir.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        _run_installer(missing, staging, progress)
        (staging / _DEPS_STAMP).write_text(key)
        shutil.rmtree(deps_dir, ignore_errors=True)
        staging.rename(deps_dir)
    prepared.deps_dir = deps_dir
    prepared.conflicts = conflicts_with_runtime(deps_dir)
    for conflict in prepared.conflicts:
        progress(f"conflict: {conflict}")


def find_uv() -> str | None:
    """uv next to this Python (a venv with uv installed) or on PATH."""
    beside = Path(sys.executable).with_name("uv")
    return str(beside) if beside.is_file() else shutil.which("uv")


def installer_command(requirements_file: Path, target: Path, uv: str | None) -> list[str]:
    """`uv pip install --target` when uv is given, else `pip install --target` with this Python."""
    if uv:
        return [uv, "pip", "install", "--python", sys.executable, "--target", str(target),
                "-r", str(requirements_file)]  # fmt: skip
    return [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
            "--target", str(target), "-r", str(requirements_file)]  # fmt: skip


def _run_installer(requirements: list[str], target: Path, progress: Progress) -> None:
    target.mkdir(parents=True)
    req_file = target.with_name(target.name + ".requirements.txt")
    req_file.write_text("\n".join(requirements) + "\n")
    command = installer_command(req_file, target, find_uv())
    tool = Path(command[0]).name
    progress(f"dependencies: installing {len(requirements)} with {tool}: {', '.join(requirements)}")
    try:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        tail: list[str] = []
        for line in proc.stdout:
            line = line.rstrip()
            if line:
                progress(f"  {line}")
                tail = [*tail[-19:], line]
        if proc.wait() != 0:
            raise ApkgError(
                "dependency_install_failed",
                f"installing {', '.join(requirements)} failed:\n" + "\n".join(tail),
            )
    finally:
        req_file.unlink(missing_ok=True)


def conflicts_with_runtime(deps_dir: Path) -> list[str]:
    """Distributions installed for the package that the runtime also ships, at another version.
    The runtime's copy is earlier on sys.path, so it wins; the package gets a warning."""
    from importlib import metadata

    runtime_path = [p for p in sys.path if Path(p or ".").resolve() != deps_dir.resolve()]
    ours = {_norm(d.metadata["Name"] or ""): d.version for d in metadata.distributions(path=runtime_path)}
    found = []
    for dist in metadata.distributions(path=[str(deps_dir)]):
        name = dist.metadata["Name"]
        have = ours.get(_norm(name or ""))
        if have and have != dist.version:
            found.append(
                f"{name} {dist.version} wanted by the package, the runtime has {have}: the runtime's wins"
            )
    return sorted(found)


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")
