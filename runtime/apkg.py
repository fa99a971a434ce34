"""Open, check and extract an agent package (APKG): a ZIP built by `pixell build`.

An APKG is untrusted input. `validate` runs every check from the ZIP's central directory and the
few small files it must read (agent.yaml, deploy.json, the entry modules' source, parsed but never
executed) without writing anything; `extract` validates, then writes only inside `into`.
Every rejection is an `ApkgError` whose `.code` names the cause.
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from runtime.manifest import AgentManifest

if TYPE_CHECKING:
    from runtime.config import RuntimeSettings

log = logging.getLogger("runtime.apkg")

MANIFEST = "agent.yaml"
DEPLOY = "deploy.json"
_MAX_META_BYTES = 1024 * 1024  # agent.yaml, deploy.json and entry modules are read into memory
_CHUNK = 1024 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")


class ApkgError(ValueError):
    """A package was refused. `.code` is a short slug (e.g. `zip_slip`), the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Limits:
    """Bounds on an untrusted package. `max_ratio` applies to entries of `ratio_floor` bytes or more
    and to the whole archive, so small, highly compressible text files are never called bombs."""

    max_package_bytes: int = 200 * 1024 * 1024
    max_unpacked_bytes: int = 1024 * 1024 * 1024
    max_files: int = 10_000
    max_ratio: float = 100.0
    ratio_floor: int = 1024 * 1024

    @classmethod
    def from_settings(cls, settings: RuntimeSettings) -> Limits:
        return cls(
            max_package_bytes=settings.max_package_bytes,
            max_unpacked_bytes=settings.max_unpacked_bytes,
            max_files=settings.max_files,
            max_ratio=settings.max_ratio,
        )


@dataclass
class PackageInfo:
    """What `validate`/`extract` learned about a package. `root` is set once it is extracted."""

    manifest: AgentManifest
    sha256: str
    size: int
    files: int
    unpacked_size: int
    # "kit" (pixell-kit 0.4: surfaces under dist/), "sdk" (pixell-sdk 0.5: at the root, with
    # .pixell/package.json) or "flat" (zipped by hand, as the original runtime accepted: neither)
    layout: str
    deploy: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    root: Path | None = None


def _default_limits() -> Limits:
    from runtime.config import RuntimeSettings

    return Limits.from_settings(RuntimeSettings())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_sha256(actual: str, expected: str | None, what: str) -> None:
    """Refuse a package whose digest differs from the one the deployment pinned."""
    if expected and actual.lower() != expected.strip().lower():
        raise ApkgError("sha256_mismatch", f"{what}: SHA-256 is {actual}, expected {expected.strip()}")


def validate(
    path: str | os.PathLike[str], limits: Limits | None = None, *, expected_sha256: str | None = None
) -> PackageInfo:
    """Run every safety check and parse the manifest, without extracting anything."""
    path = Path(path)
    limits = limits or _default_limits()
    if not path.is_file():
        raise ApkgError("not_found", f"{path}: no such package file")
    size = path.stat().st_size
    if size > limits.max_package_bytes:
        raise ApkgError("too_large", f"{path}: {size} bytes, over the limit of {limits.max_package_bytes}")
    sha256 = file_sha256(path)
    check_sha256(sha256, expected_sha256, str(path))
    try:
        with zipfile.ZipFile(path) as zf:
            return _inspect(zf, path, size, sha256, limits)
    except zipfile.BadZipFile as exc:
        raise ApkgError("not_a_zip", f"{path}: not a ZIP archive ({exc})") from exc
    except _CORRUPT as exc:
        raise _corrupt(path, exc) from exc


def extract(
    path: str | os.PathLike[str],
    into: str | os.PathLike[str],
    limits: Limits | None = None,
    *,
    expected_sha256: str | None = None,
) -> PackageInfo:
    """Validate, then extract into `into` (created; must be empty). Nothing is written elsewhere;
    on failure a folder this call created is removed again."""
    path, into = Path(path), Path(into)
    limits = limits or _default_limits()
    info = validate(path, limits, expected_sha256=expected_sha256)
    created = not into.exists()
    if not created and any(into.iterdir()):
        raise ApkgError("target_not_empty", f"{into}: extraction folder is not empty")
    into.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(path) as zf:
            _write_members(zf, into.resolve(), limits)
    except (zipfile.BadZipFile, *_CORRUPT) as exc:
        if created:
            shutil.rmtree(into, ignore_errors=True)
        raise _corrupt(path, exc) from exc
    except BaseException:
        if created:
            shutil.rmtree(into, ignore_errors=True)
        raise
    info.root = into
    return info


# What reading a damaged entry raises besides BadZipFile (a bad CRC, header or name): a broken
# deflate stream, a stream cut short, a compression method Python lacks.
_CORRUPT = (zlib.error, EOFError, NotImplementedError)


def _corrupt(path: Path, exc: Exception) -> ApkgError:
    return ApkgError("corrupt_entry", f"{path}: an entry cannot be read, the archive is damaged ({exc})")


def _inspect(zf: zipfile.ZipFile, path: Path, size: int, sha256: str, limits: Limits) -> PackageInfo:
    members = zf.infolist()
    if len(members) > limits.max_files:
        raise ApkgError("too_many_files", f"{path}: {len(members)} entries, limit {limits.max_files}")
    names: set[str] = set()
    unpacked = 0
    for info in members:
        _check_member(info, limits)
        if info.filename in names:
            raise ApkgError("duplicate_entry", f"{info.filename!r} appears twice in the archive")
        names.add(info.filename)
        unpacked += info.file_size
    if unpacked > limits.max_unpacked_bytes:
        raise ApkgError(
            "unpacked_too_large",
            f"{path}: unpacks to {unpacked} bytes, over the limit of {limits.max_unpacked_bytes}",
        )
    if unpacked >= limits.ratio_floor and unpacked > limits.max_ratio * size:
        raise ApkgError(
            "zip_bomb",
            f"{path}: unpacks to {unpacked} bytes from {size} "
            f"(ratio {unpacked / size:.0f}, limit {limits.max_ratio:g})",
        )
    manifest, warnings = _read_manifest(zf, names)
    deploy = _read_deploy(zf, names)
    _check_entry_points(zf, names, manifest)
    layout = _layout(names)
    if manifest.ui and not _ui_present(names, manifest.ui.path, layout):
        warnings.append(f"ui.path {manifest.ui.path!r} is not in the package")
    for warning in warnings:
        log.warning("apkg: %s", warning, extra={"package": str(path)})
    return PackageInfo(
        manifest=manifest,
        sha256=sha256,
        size=size,
        files=len(members),
        unpacked_size=unpacked,
        layout=layout,
        deploy=deploy,
        warnings=warnings,
    )


def _layout(names: set[str]) -> str:
    if any(n.startswith("dist/") for n in names):
        return "kit"
    return "sdk" if ".pixell/package.json" in names else "flat"


def _check_member(info: zipfile.ZipInfo, limits: Limits) -> None:
    name = info.filename
    if not name or "\x00" in name:
        raise ApkgError("bad_name", f"entry name {name!r} is empty or contains NUL")
    norm = name.replace("\\", "/")
    if norm.startswith("/") or _DRIVE.match(norm):
        raise ApkgError("absolute_path", f"entry {name!r} has an absolute path")
    if ".." in norm.split("/"):
        raise ApkgError("zip_slip", f"entry {name!r} climbs out of the package with '..'")
    mode = info.external_attr >> 16
    if info.create_system == 3 and stat.S_IFMT(mode):
        if stat.S_ISLNK(mode):
            raise ApkgError("symlink", f"entry {name!r} is a symbolic link; links are not allowed")
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise ApkgError("special_file", f"entry {name!r} is a special file (device, FIFO or socket)")
    if info.flag_bits & 0x1:
        raise ApkgError("encrypted", f"entry {name!r} is encrypted")
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size >= limits.ratio_floor and ratio > limits.max_ratio:
        raise ApkgError(
            "zip_bomb",
            f"entry {name!r} unpacks {info.compress_size} bytes to {info.file_size} "
            f"(ratio above the limit of {limits.max_ratio:g})",
        )


def _read_small(zf: zipfile.ZipFile, name: str) -> bytes:
    if zf.getinfo(name).file_size > _MAX_META_BYTES:
        raise ApkgError("bad_manifest", f"{name} is larger than {_MAX_META_BYTES} bytes")
    return zf.read(name)


def _read_manifest(zf: zipfile.ZipFile, names: set[str]) -> tuple[AgentManifest, list[str]]:
    if MANIFEST not in names:
        raise ApkgError("missing_manifest", f"{MANIFEST} is missing from the package root")
    import yaml  # lazily: a prepared folder starts without PyYAML

    try:
        data = yaml.safe_load(_read_small(zf, MANIFEST))
    except yaml.YAMLError as exc:
        raise ApkgError("bad_manifest", f"{MANIFEST} is not valid YAML: {exc}") from exc
    return parse_manifest(data)


def parse_manifest(data: object) -> tuple[AgentManifest, list[str]]:
    """Validate agent.yaml content; wrong types name the field path, unknown fields become warnings."""
    if not isinstance(data, dict):
        raise ApkgError("bad_manifest", f"{MANIFEST} must be a mapping, not {type(data).__name__}")
    try:
        manifest = AgentManifest.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()
        )
        raise ApkgError("invalid_manifest", f"{MANIFEST} is invalid: {problems}") from exc
    warnings = [f"{MANIFEST}: unknown field {name!r} kept" for name in manifest.unknown_fields()]
    return manifest, warnings


def _read_deploy(zf: zipfile.ZipFile, names: set[str]) -> dict[str, Any]:
    if DEPLOY not in names:
        return {}
    try:
        data = json.loads(_read_small(zf, DEPLOY))
    except ValueError as exc:
        raise ApkgError("bad_deploy_json", f"{DEPLOY} is not valid JSON: {exc}") from exc
    env = data.get("environment", {}) if isinstance(data, dict) else None
    if not isinstance(env, dict):
        raise ApkgError("bad_deploy_json", f"{DEPLOY} must be an object whose 'environment' is an object")
    return data


def _check_entry_points(zf: zipfile.ZipFile, names: set[str], manifest: AgentManifest) -> None:
    if not (manifest.entrypoint or manifest.rest or manifest.a2a or manifest.ui or manifest.http_server):
        # what `pixell build` refuses ("Entrypoint is required when no surfaces are configured"):
        # deployed, it would be Ready and answer nothing
        raise ApkgError(
            "no_surfaces",
            f"{MANIFEST} declares no entrypoint and no surface (rest, a2a, ui, http_server): "
            "nothing to serve",
        )
    if manifest.rest and ":" not in manifest.rest.entry and not manifest.entrypoint:
        raise ApkgError(
            "entrypoint_unresolved",
            f"rest.entry {manifest.rest.entry!r} names no module and there is no entrypoint",
        )
    for surface, spec in manifest.entry_points().items():
        module, _, attr = spec.partition(":")
        rel = module.replace(".", "/")
        source_name = next((c for c in (f"{rel}.py", f"{rel}/__init__.py") if c in names), None)
        if source_name is None:
            raise ApkgError(
                "entrypoint_unresolved",
                f"{surface} {spec!r}: module {module!r} is not in the package (no {rel}.py)",
            )
        try:
            tree = ast.parse(_read_small(zf, source_name), filename=source_name)
        except SyntaxError as exc:
            raise ApkgError(
                "entrypoint_unresolved", f"{surface} {spec!r}: {source_name} line {exc.lineno}: {exc.msg}"
            ) from exc
        if not _may_define(tree.body, attr.split(".")[0]):
            raise ApkgError(
                "entrypoint_unresolved",
                f"{surface} {spec!r}: {source_name} defines no {attr.split('.')[0]!r}",
            )


def _may_define(body: list[ast.stmt], name: str) -> bool:
    """Whether module-level code binds `name` (conservatively true for `import *`/`__getattr__`)."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name in (name, "__getattr__"):
                return True
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                if alias.name == "*" or bound == name:
                    return True
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(n, ast.Name) and n.id == name for t in targets for n in ast.walk(t)):
                return True
        elif isinstance(node, ast.If | ast.Try | ast.With):
            nested = [*node.body, *getattr(node, "orelse", []), *getattr(node, "finalbody", [])]
            nested += [s for h in getattr(node, "handlers", []) for s in h.body]
            if _may_define(nested, name):
                return True
    return False


def _ui_present(names: set[str], ui_path: str, layout: str) -> bool:
    prefixes = [ui_path.strip("/") + "/"]
    if layout == "kit":
        prefixes.append("dist/ui/")
    return any(n.startswith(p) for n in names for p in prefixes)


def _write_members(zf: zipfile.ZipFile, root: Path, limits: Limits) -> None:
    written = 0
    for info in zf.infolist():
        target = (root / info.filename.replace("\\", "/")).resolve()
        if not target.is_relative_to(root):
            raise ApkgError("zip_slip", f"entry {info.filename!r} would be written outside {root}")
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
        with os.fdopen(fd, "wb") as out, zf.open(info) as src:
            while chunk := src.read(_CHUNK):
                written += len(chunk)
                if written > limits.max_unpacked_bytes:
                    raise ApkgError("unpacked_too_large", f"unpacked over {limits.max_unpacked_bytes} bytes")
                out.write(chunk)
