"""The static policy file source: reloads on change, keeps the last good policy, goes stale."""

import json
import os
from pathlib import Path

import pytest

from gateway.feed import FilePolicy, policy_source_from
from gateway.settings import GatewaySettings
from tests.support.gateway import make_key, snapshot


def write(path: Path, data: object, mtime: int) -> None:
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    os.utime(path, (mtime, mtime))


async def test_reloads_when_the_file_changes_and_keeps_the_last_good_one(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    _, record = make_key()
    write(path, snapshot([record], revision="1"), 1_000)
    source = FilePolicy(str(path), interval=60, max_staleness=60)
    await source.start()
    try:
        assert source.current().revision == "1"
        write(path, snapshot([{**record, "revoked": True}], revision="2"), 2_000)
        await source._refresh_logged()
        assert source.current().keys[record["id"]].revoked
        write(path, "{not json", 3_000)
        await source._refresh_logged()
        assert source.current().revision == "2"
        path.unlink()
        await source._refresh_logged()
        assert source.current().revision == "2"
    finally:
        await source.stop()


async def test_a_policy_older_than_max_staleness_is_not_served(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    write(path, snapshot([]), 1_000)
    source = FilePolicy(str(path), interval=60, max_staleness=0.05)
    await source.start()
    try:
        assert source.current() is not None
        path.unlink()
        source._checked_at -= 1  # as if the last good read were a second ago
        await source._refresh_logged()
        assert source.current() is None
    finally:
        await source.stop()


def test_a_source_must_be_configured() -> None:
    with pytest.raises(ValueError, match="PAR_REGISTRY_URL"):
        policy_source_from(GatewaySettings())
