"""The read cache never keeps a body computed before a change it did not see."""

from __future__ import annotations

import time

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
