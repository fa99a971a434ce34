"""Hostile packages make `par runtime serve` exit non-zero, name the problem, and write nothing
outside the runtime's folder."""

from __future__ import annotations

import hashlib
import socket
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.integration.runtime.conftest import run_par
from tests.support.apkgs import repack, unix_entry
from tests.support.net import free_port

pytestmark = pytest.mark.integration


def _serve(pkg: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run_par(["runtime", "serve", str(pkg), "--port", str(free_port())], tmp_path / "work", 60, **env)


def _manifest_with(apkg: Path, **changes: object) -> bytes:
    import zipfile

    with zipfile.ZipFile(apkg) as zf:
        return yaml.safe_dump(yaml.safe_load(zf.read("agent.yaml")) | changes).encode()


def _files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


HOSTILE = {
    "zip_slip": ({"extra": [("../../escape.txt", b"pwned")]}, {}, "climbs out of the package"),
    "absolute_path": ({"extra": [("/tmp/par-escape.txt", b"pwned")]}, {}, "absolute path"),
    "symlink": (
        {"extra": [(unix_entry("src/escape.txt", stat.S_IFLNK | 0o777), b"/etc/passwd")]},
        {},
        "symbolic link",
    ),
    "zip_bomb": ({"extra": [("src/bomb.bin", bytes(40 * 1024 * 1024))]}, {}, "ratio"),
    "too_many_files": ({}, {"PAR_APKG_MAX_FILES": "10"}, "limit 10"),
    "missing_manifest": ({"drop": {"agent.yaml"}}, {}, "agent.yaml is missing"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_package_is_refused(demo_apkg_kit: Path, tmp_path: Path, case: str) -> None:
    changes, env, words = HOSTILE[case]
    pkg = repack(demo_apkg_kit, tmp_path / "hostile.apkg", **changes)
    before = _files_under(tmp_path)
    result = _serve(pkg, tmp_path, **env)
    assert result.returncode == 2, result.stderr
    assert f"package refused ({case})" in result.stderr and words in result.stderr
    created = _files_under(tmp_path) - before
    assert created <= {"work", "work/agents"}, created
    assert not Path("/tmp/par-escape.txt").exists()


@pytest.mark.parametrize(
    ("changes", "code", "words"),
    [
        ({"metadata": {"version": [1]}}, "invalid_manifest", "metadata.version"),
        ({"entrypoint": "src.main:missing"}, "entrypoint_unresolved", "defines no 'missing'"),
        ({"rest": {"entry": "src.nowhere:mount"}}, "entrypoint_unresolved", "src.nowhere"),
    ],
)
def test_bad_manifest_is_refused(
    demo_apkg_sdk: Path, tmp_path: Path, changes: dict, code: str, words: str
) -> None:
    pkg = repack(
        demo_apkg_sdk, tmp_path / "bad.apkg", replace={"agent.yaml": _manifest_with(demo_apkg_sdk, **changes)}
    )
    result = _serve(pkg, tmp_path)
    assert result.returncode == 2
    assert f"({code})" in result.stderr and words in result.stderr


def test_entry_module_failing_at_import_is_refused(demo_apkg_kit: Path, tmp_path: Path) -> None:
    broken = b"import module_that_does_not_exist\n\ndef handler(context):\n    return context\n"
    pkg = repack(demo_apkg_kit, tmp_path / "broken.apkg", replace={"src/main.py": broken})
    result = _serve(pkg, tmp_path)
    assert result.returncode == 2
    assert "(entrypoint_unresolved)" in result.stderr
    assert "ModuleNotFoundError" in result.stderr and "module_that_does_not_exist" in result.stderr


def test_package_sha256_mismatch_refuses_to_start(demo_apkg_kit: Path, tmp_path: Path) -> None:
    result = _serve(demo_apkg_kit, tmp_path, PACKAGE_SHA256="ab" * 32)
    assert result.returncode == 2 and "(sha256_mismatch)" in result.stderr
    assert not (tmp_path / "work" / "agents").exists()
    good = hashlib.sha256(demo_apkg_kit.read_bytes()).hexdigest()
    assert good in result.stderr


def test_missing_package_is_a_clear_error(tmp_path: Path) -> None:
    result = _serve(tmp_path / "nope.apkg", tmp_path)
    assert result.returncode == 2 and "(not_found)" in result.stderr


def test_rest_mount_raising_is_refused(demo_apkg_kit: Path, tmp_path: Path) -> None:
    broken = b"def mount(app):\n    raise RuntimeError('no routes today')\n"
    pkg = repack(demo_apkg_kit, tmp_path / "rest.apkg", replace={"src/rest/index.py": broken})
    result = _serve(pkg, tmp_path)
    assert result.returncode == 2
    assert "(rest_failed)" in result.stderr and "no routes today" in result.stderr


def test_port_in_use_is_a_startup_failure(demo_apkg_kit: Path, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_par(["runtime", "serve", str(demo_apkg_kit), "--port", str(port)], tmp_path / "work", 60)
    assert result.returncode == 3
    assert "address already in use" in result.stderr.lower()
