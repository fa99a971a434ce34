"""runtime.apkg against real packages from both pixell tools and hostile ones derived from them."""

from __future__ import annotations

import hashlib
import stat
import zipfile
from pathlib import Path

import pytest
import yaml

from runtime.apkg import ApkgError, Limits, extract, validate
from tests.support.apkgs import repack, unix_entry


@pytest.fixture(params=["kit", "sdk"])
def demo_apkg(request: pytest.FixtureRequest) -> Path:
    return request.getfixturevalue(f"demo_apkg_{request.param}")


def _manifest(apkg: Path) -> dict:
    with zipfile.ZipFile(apkg) as zf:
        return yaml.safe_load(zf.read("agent.yaml"))


def _edited_manifest(apkg: Path, dest: Path, **changes: object) -> Path:
    data = _manifest(apkg) | changes
    return repack(apkg, dest, replace={"agent.yaml": yaml.safe_dump(data).encode()})


def _refused(path: Path, code: str, limits: Limits | None = None) -> ApkgError:
    with pytest.raises(ApkgError) as caught:
        validate(path, limits)
    assert caught.value.code == code, str(caught.value)
    return caught.value


def test_both_tools_packages_validate(demo_apkg: Path) -> None:
    info = validate(demo_apkg)
    assert info.manifest.name == "demo-agent"
    assert info.manifest.version == "0.1.0"
    assert info.sha256 == hashlib.sha256(demo_apkg.read_bytes()).hexdigest()
    assert info.size == demo_apkg.stat().st_size
    assert info.layout == ("kit" if "kit" in str(demo_apkg.parent) else "sdk")
    assert info.deploy["environment"] == {"DEMO_GREETING": "Hello"}
    assert info.warnings == []
    assert info.root is None


def test_model_dump_round_trips_the_manifest(demo_apkg: Path) -> None:
    dumped = validate(demo_apkg).manifest.model_dump(exclude_none=True)
    original = _manifest(demo_apkg)
    assert dumped["version"] == original["version"] == "1.0"
    assert dumped["metadata"]["version"] == "0.1.0"
    assert dumped["a2a"]["service"] == "src.a2a.server:serve"


def test_extract_writes_the_package_only_into_the_folder(demo_apkg: Path, tmp_path: Path) -> None:
    into = tmp_path / "agent"
    info = extract(demo_apkg, into)
    assert info.root == into
    assert (into / "agent.yaml").is_file()
    assert (into / "src" / "main.py").read_text().count("Hello from handler") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent"]


def test_extract_refuses_a_folder_that_is_not_empty(demo_apkg_kit: Path, tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(ApkgError) as caught:
        extract(demo_apkg_kit, tmp_path)
    assert caught.value.code == "target_not_empty"
    assert (tmp_path / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("entry", "code", "words"),
    [
        ("../evil.py", "zip_slip", "'..'"),
        ("src/../../evil.py", "zip_slip", "'..'"),
        ("/tmp/evil.py", "absolute_path", "absolute"),
        ("C:/evil.py", "absolute_path", "absolute"),
        ("..\\evil.py", "zip_slip", "'..'"),
    ],
)
def test_paths_escaping_the_folder_are_refused(
    demo_apkg_kit: Path, tmp_path: Path, entry: str, code: str, words: str
) -> None:
    hostile = repack(demo_apkg_kit, tmp_path / "hostile.apkg", extra=[(entry, b"print('pwned')")])
    error = _refused(hostile, code)
    assert words in str(error) and "evil.py" in str(error)
    with pytest.raises(ApkgError):
        extract(hostile, tmp_path / "out" / "agent")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "evil.py").exists()


@pytest.mark.parametrize(
    ("mode", "code"),
    [
        (stat.S_IFLNK | 0o777, "symlink"),
        (stat.S_IFIFO | 0o644, "special_file"),
        (stat.S_IFCHR | 0o644, "special_file"),
    ],
)
def test_links_and_special_files_are_refused(
    demo_apkg_sdk: Path, tmp_path: Path, mode: int, code: str
) -> None:
    hostile = repack(
        demo_apkg_sdk, tmp_path / "hostile.apkg", extra=[(unix_entry("src/link", mode), b"/etc/passwd")]
    )
    assert "src/link" in str(_refused(hostile, code))


def test_zip_bomb_is_refused_by_compression_ratio(demo_apkg_kit: Path, tmp_path: Path) -> None:
    hostile = repack(
        demo_apkg_kit, tmp_path / "bomb.apkg", extra=[("src/zeros.bin", bytes(30 * 1024 * 1024))]
    )
    assert hostile.stat().st_size < 200_000
    assert "ratio" in str(_refused(hostile, "zip_bomb"))


def test_many_small_compressible_files_count_toward_the_whole_archive_ratio(
    demo_apkg_kit: Path, tmp_path: Path
) -> None:
    files = [(f"src/z{i}.txt", bytes(512 * 1024)) for i in range(8)]
    hostile = repack(demo_apkg_kit, tmp_path / "bomb.apkg", extra=files)
    _refused(hostile, "zip_bomb")
    assert validate(hostile, Limits(max_ratio=10_000)).files == 25 + 8


def test_size_and_count_limits_are_configurable(demo_apkg_kit: Path) -> None:
    assert "limit 10" in str(_refused(demo_apkg_kit, "too_many_files", Limits(max_files=10)))
    _refused(demo_apkg_kit, "too_large", Limits(max_package_bytes=1000))
    _refused(demo_apkg_kit, "unpacked_too_large", Limits(max_unpacked_bytes=1000))


def test_not_a_zip_and_missing_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.apkg"
    junk.write_bytes(b"not a zip at all")
    _refused(junk, "not_a_zip")
    _refused(tmp_path / "absent.apkg", "not_found")


def test_sha256_pin_mismatch_is_refused(demo_apkg_kit: Path) -> None:
    with pytest.raises(ApkgError) as caught:
        validate(demo_apkg_kit, expected_sha256="0" * 64)
    assert caught.value.code == "sha256_mismatch"
    good = hashlib.sha256(demo_apkg_kit.read_bytes()).hexdigest()
    assert validate(demo_apkg_kit, expected_sha256=good.upper()).sha256 == good


def test_missing_and_malformed_manifest(demo_apkg_kit: Path, tmp_path: Path) -> None:
    _refused(repack(demo_apkg_kit, tmp_path / "a.apkg", drop={"agent.yaml"}), "missing_manifest")
    bad_yaml = repack(demo_apkg_kit, tmp_path / "b.apkg", replace={"agent.yaml": b"name: [unclosed\n"})
    assert "not valid YAML" in str(_refused(bad_yaml, "bad_manifest"))
    a_list = repack(demo_apkg_kit, tmp_path / "c.apkg", replace={"agent.yaml": b"- just\n- a list\n"})
    assert "mapping" in str(_refused(a_list, "bad_manifest"))


def test_wrong_types_name_the_field_path(demo_apkg_kit: Path, tmp_path: Path) -> None:
    hostile = _edited_manifest(
        demo_apkg_kit, tmp_path / "h.apkg", metadata={"version": ["0.1.0"]}, ui={"path": ["ui"]}
    )
    message = str(_refused(hostile, "invalid_manifest"))
    assert "metadata.version" in message and "ui.path" in message
    bad_name = _edited_manifest(demo_apkg_kit, tmp_path / "n.apkg", name="Demo Agent")
    assert "name:" in str(_refused(bad_name, "invalid_manifest"))


def test_unknown_fields_are_kept_with_a_warning(demo_apkg_sdk: Path, tmp_path: Path) -> None:
    data = _manifest(demo_apkg_sdk)
    data["future_field"] = {"x": 1}
    data["metadata"]["maintainer"] = "ops"
    pkg = repack(demo_apkg_sdk, tmp_path / "u.apkg", replace={"agent.yaml": yaml.safe_dump(data).encode()})
    info = validate(pkg)
    assert any("'future_field'" in w for w in info.warnings)
    assert any("'metadata.maintainer'" in w for w in info.warnings)
    dumped = info.manifest.model_dump()
    assert dumped["future_field"] == {"x": 1} and dumped["metadata"]["maintainer"] == "ops"


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("entrypoint", "src.missing:handler", "module 'src.missing' is not in the package"),
        ("entrypoint", "src.main:nothing_here", "defines no 'nothing_here'"),
        ("rest", {"entry": "src.rest.index:absent"}, "rest 'src.rest.index:absent'"),
        ("a2a", {"service": "nowhere.server:serve"}, "a2a 'nowhere.server:serve'"),
        ("entrypoint", "no_colon", "module:function"),
    ],
)
def test_entry_points_that_do_not_resolve(
    demo_apkg_kit: Path, tmp_path: Path, field: str, value: object, words: str
) -> None:
    hostile = _edited_manifest(demo_apkg_kit, tmp_path / "e.apkg", **{field: value})
    with pytest.raises(ApkgError) as caught:
        validate(hostile)
    assert caught.value.code in {"entrypoint_unresolved", "invalid_manifest"}
    assert words in str(caught.value)


def test_entry_module_with_syntax_error_is_refused_without_running_it(
    demo_apkg_kit: Path, tmp_path: Path
) -> None:
    hostile = repack(demo_apkg_kit, tmp_path / "s.apkg", replace={"src/main.py": b"def handler(:\n"})
    assert "src/main.py line 1" in str(_refused(hostile, "entrypoint_unresolved"))


def test_duplicate_entries_are_refused(demo_apkg_kit: Path, tmp_path: Path) -> None:
    second = [("src/main.py", b"def handler(c):\n    return 1\n")]
    with pytest.warns(UserWarning, match="Duplicate name"):
        hostile = repack(demo_apkg_kit, tmp_path / "d.apkg", extra=second)
    _refused(hostile, "duplicate_entry")
