"""`scripts/images.sh archive DIR`: docker-archive tarballs carrying the image names, what
`ctr -n k8s.io images import` takes (scripts/cluster.sh imports them into the node's containerd)."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.integration.images.conftest import SCRIPT, Images

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(2700)]


def test_archive_saves_both_images_with_their_names_once(images: Images, tmp_path: Path) -> None:
    def archive() -> dict[str, str]:
        result = subprocess.run(
            ["bash", str(SCRIPT), "archive", str(tmp_path)], capture_output=True, text=True, timeout=1800
        )
        assert result.returncode == 0, result.stderr[-4000:]
        return dict(line.split("=", 1) for line in result.stdout.splitlines())

    out = archive()
    # Another engineer's edit between the session's build and this call would give new names.
    expected = {"RUNTIME": out["RUNTIME_IMAGE"], "PLATFORM": out["PLATFORM_IMAGE"]}
    for kind, image in expected.items():
        path = Path(out[f"{kind}_ARCHIVE"])
        assert path.parent == tmp_path and path.name.endswith(".tar")
        with tarfile.open(path) as tar:
            manifest = tar.extractfile("manifest.json")
            assert manifest is not None
            (entry,) = json.load(manifest)
        assert entry["RepoTags"] == [image]
        assert entry["Layers"]
    first = {kind: Path(out[f"{kind}_ARCHIVE"]).stat().st_mtime_ns for kind in expected}
    again = archive()
    if again["RUNTIME_IMAGE"] == out["RUNTIME_IMAGE"]:  # unchanged inputs: nothing written again
        assert {kind: Path(again[f"{kind}_ARCHIVE"]).stat().st_mtime_ns for kind in expected} == first
    for path in tmp_path.glob("*.tar"):
        path.unlink()  # 700 MB: pytest keeps the last sessions' temporary folders
