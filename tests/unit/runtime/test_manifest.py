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
    with pytest.raises(ApkgError, match=r"no agent version: set metadata\.version"):
        parse_manifest({"name": "x"})
    with pytest.raises(ApkgError, match="name: Field required"):
        parse_manifest({"version": "1.0"})


def test_the_original_runtimes_manifest_top_level_version_and_sub_agents() -> None:
    """The original's example: no metadata.version, a top-level version, sub_agents, ui.basePath."""
    manifest, warnings = parse_manifest(
        {
            "name": "example-three-surface-agent",
            "version": "0.1.0",
            "entrypoint": "main:handler",
            "a2a": {"service": "a2a_service:create_grpc_server"},
            "ui": {"path": "ui", "basePath": "/"},
            "metadata": {"sub_agents": [{"name": "example_agent", "description": "x", "public": True}]},
        }
    )
    assert warnings == []
    assert manifest.version == "0.1.0"
    assert manifest.metadata.sub_agents[0].name == "example_agent"
    assert manifest.ui is not None and manifest.ui.base_path == "/"


def test_metadata_version_wins_over_the_manifest_format_version() -> None:
    manifest, _ = parse_manifest({"name": "x", "version": "1.0", "metadata": {"version": "2.3.4"}})
    assert manifest.version == "2.3.4" and manifest.manifest_version == "1.0"
    dumped = manifest.model_dump(mode="json", exclude_none=True)
    assert dumped["version"] == "1.0" and dumped["metadata"]["version"] == "2.3.4"
