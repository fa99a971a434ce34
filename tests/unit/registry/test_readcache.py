"""The read cache never keeps a body computed before a change it did not see."""

from __future__ import annotations

import time
from pathlib import Path

from registry.readcache import ReadCache


def test_hit_clear_and_expiry() -> None:
    cache = ReadCache(ttl=0.2)
    cache.put("default/a", b"v1", cache.generation)
    assert cache.get("default/a") == b"v1"
    cache.clear()
    assert cache.get("default/a") is None
    cache.put("default/a", b"v2", cache.generation)
    time.sleep(0.25)
    assert cache.get("default/a") is None


def test_a_read_that_raced_a_change_is_not_stored() -> None:
    cache = ReadCache(ttl=10)
    started_in = cache.generation  # a read begins...
    cache.clear()  # ...a change commits meanwhile...
    cache.put("default/a", b"stale", started_in)  # ...so what it read may be stale
    assert cache.get("default/a") is None


def test_zero_ttl_disables() -> None:
    cache = ReadCache(ttl=0)
    cache.put("default/a", b"v", cache.generation)
    assert cache.get("default/a") is None


async def test_every_commit_through_the_registry_sessions_clears_it(tmp_path: Path) -> None:
    """Writers outside the API (watchers, `par up`'s status keeper) invalidate it too."""
    from registry.db import open_database
    from registry.models import Namespace
    from registry.settings import RegistrySettings

    db = await open_database(RegistrySettings(data_dir=tmp_path))
    cache = ReadCache(ttl=10)
    db.after_commit.append(cache.clear)
    try:
        cache.put("default/a", b"v1", cache.generation)
        async with db.sessions() as session:
            session.add(Namespace(name="team-a"))
            await session.commit()
        assert cache.get("default/a") is None
    finally:
        await db.close()
