"""Which requirements a package needs installed, and the environment layers it gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.agent import layered_environment
from runtime.apkg import ApkgError, extract
from runtime.prepare import Prepared, missing_requirements, requirements_of
from tests.support.apkgs import repack


@pytest.fixture
def demo_dir(demo_apkg_kit: Path, tmp_path: Path) -> Prepared:
    info = extract(demo_apkg_kit, tmp_path / "app")
    return Prepared(app_dir=tmp_path / "app", manifest=info.manifest, deploy=info.deploy)


def test_requirements_file_comes_first_and_options_are_skipped(demo_dir: Prepared) -> None:
    (demo_dir.app_dir / "requirements.txt").write_text(
        "# comment\n\nsix==1.16.0  # inline\n-r other.txt\n--index-url http://evil\nidna>=3\n"
    )
    assert requirements_of(demo_dir.app_dir, demo_dir.manifest) == ["six==1.16.0", "idna>=3"]


def test_manifest_dependencies_then_pyproject(demo_dir: Prepared) -> None:
    (demo_dir.app_dir / "requirements.txt").unlink()
    assert requirements_of(demo_dir.app_dir, demo_dir.manifest) == ["fastapi>=0.110.0"]
    demo_dir.manifest.dependencies = []
    (demo_dir.app_dir / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["six>=1"]\n')
    assert requirements_of(demo_dir.app_dir, demo_dir.manifest) == ["six>=1"]


def test_only_what_the_runtime_lacks_is_missing() -> None:
    assert missing_requirements(["fastapi>=0.110", "pydantic>=2"]) == []
    assert missing_requirements(["fastapi<0.1", "six==1.16.0"]) == ["fastapi<0.1", "six==1.16.0"]
    assert missing_requirements(['six==1.16.0; python_version < "3"']) == []
    with pytest.raises(ApkgError) as caught:
        missing_requirements(["not a requirement ==="])
    assert caught.value.code == "bad_requirements"


def test_environment_layers(demo_apkg_kit: Path, tmp_path: Path) -> None:
    deploy = {"environment": {"DEMO_GREETING": "from deploy", "ONLY_DEPLOY": "1"}}
    pkg = repack(demo_apkg_kit, tmp_path / "p.apkg", replace={"deploy.json": json.dumps(deploy).encode()})
    info = extract(pkg, tmp_path / "app")
    prepared = Prepared(app_dir=tmp_path / "app", manifest=info.manifest, deploy=info.deploy)
    assert layered_environment(prepared, {}) == {
        "DEMO_GREETING": "from deploy",
        "DEMO_SOURCE": "dotenv",
        "ONLY_DEPLOY": "1",
    }
    assert layered_environment(prepared, {"DEMO_GREETING": "process"}) == {
        "DEMO_SOURCE": "dotenv",
        "ONLY_DEPLOY": "1",
    }
    prepared.deploy = {}
    assert layered_environment(prepared, {})["DEMO_GREETING"] == "Hello"  # agent.yaml over .env's "Hi"
