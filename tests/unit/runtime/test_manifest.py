"""The manifest model accepts everything both pixell tools write."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from runtime.apkg import ApkgError, parse_manifest


@pytest.mark.parametrize("tool", ["kit", "sdk"])
def test_the_full_manifest_each_tool_records_parses_without_warnings(
    tool: str, request: pytest.FixtureRequest
) -> None:
    apkg: Path = request.getfixturevalue(f"demo_apkg_{tool}")
    with zipfile.ZipFile(apkg) as zf:
        recorded = json.loads(zf.read(".pixell/package.json"))["manifest"]
    manifest, warnings = parse_manifest(recorded)
    assert warnings == []
    assert manifest.name == "demo-agent" and manifest.version == "0.1.0"


def test_every_documented_field() -> None:
    manifest, warnings = parse_manifest(
        {
            "version": "1.0",
            "name": "full",
            "display_name": "Full",
            "description": "d",
            "author": "a",
            "license": "MIT",
            "entrypoint": "main:handler",
            "capabilities": ["x"],
            "runtime": "python3.11",
            "environment": {"PORT_HINT": 8080},
            "dependencies": ["six==1.16.0"],
            "mcp": {"enabled": True, "config_file": "mcp.json"},
            "metadata": {
                "version": 1.2,
                "homepage": "h",
                "repository": "r",
                "tags": ["t"],
                "author_email": "e",
            },
            "permissions": {"required": ["user.profile"], "optional": []},
            "data_access": {"oauth_providers": ["google"], "user_data": [], "external_apis": []},
            "http_server": "main:app",
            "a2a": {"entry": "main:a2a", "http_server": "main:a2a"},
            "rest": {"entry": "mount"},
            "ui": {"path": "ui"},
            "ui_spec_version": "1",
            "required_ui_capabilities": ["c"],
            "plan_mode": {"supported": True, "phases": ["discovery"], "discovery_type": "x"},
            "translation": {"supported": True, "default_language": "en", "supported_languages": ["en", "ko"]},
        }
    )
    assert warnings == []
    assert manifest.version == "1.2"  # YAML numbers become strings
    assert manifest.environment == {"PORT_HINT": "8080"}
    assert manifest.entry_points() == {
        "entrypoint": "main:handler",
        "rest": "main:mount",
        "a2a": "main:a2a",
        "http_server": "main:app",
    }


def test_wrong_types_are_listed_with_their_paths() -> None:
    with pytest.raises(ApkgError) as caught:
        parse_manifest(
            {
                "name": "x",
                "entrypoint": "m:f",
                "metadata": {"version": "1"},
                "a2a": {"service": 3},
                "environment": ["A=1"],
            }
        )
    message = str(caught.value)
    assert caught.value.code == "invalid_manifest"
    assert "environment: Input should be a valid dictionary" in message and "a2a.service" in message


def test_missing_required_fields() -> None:
    with pytest.raises(ApkgError, match="metadata: Field required"):
        parse_manifest({"name": "x"})
