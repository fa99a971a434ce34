"""The in-process token bucket, on a clock the test moves."""

import pytest

from gateway.policy import Limit
from gateway.ratelimit import MemoryRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_burst_then_refill_at_rate(clock: Clock) -> None:
    limiter = MemoryRateLimiter(clock)
    limit = Limit(rate=2.0, burst=3)
    results = [await limiter.hit("k|default/a", limit) for _ in range(4)]
    assert [r.allowed for r in results] == [True, True, True, False]
    assert [r.remaining for r in results] == [2, 1, 0, 0]
    denied = results[-1]
    assert denied.retry_after == 1 and denied.limit == 3 and denied.reset == 2
    clock.now += 0.5  # one token back
    assert (await limiter.hit("k|default/a", limit)).allowed
    assert not (await limiter.hit("k|default/a", limit)).allowed
    clock.now += 100
    assert (await limiter.hit("k|default/a", limit)).remaining == 2  # capped at burst


async def test_buckets_are_per_key_and_agent(clock: Clock) -> None:
    limiter = MemoryRateLimiter(clock)
    limit = Limit(rate=1.0, burst=1)
    assert (await limiter.hit("k1|default/a", limit)).allowed
    assert not (await limiter.hit("k1|default/a", limit)).allowed
    assert (await limiter.hit("k2|default/a", limit)).allowed
    assert (await limiter.hit("k1|default/b", limit)).allowed


async def test_headers_follow_the_ratelimit_draft(clock: Clock) -> None:
    limiter = MemoryRateLimiter(clock)
    limit = Limit(rate=0.1, burst=1)
    await limiter.hit("k|x/y", limit)
    headers = dict((await limiter.hit("k|x/y", limit)).headers())
    assert headers == {
        b"ratelimit-limit": b"1",
        b"ratelimit-remaining": b"0",
        b"ratelimit-reset": b"10",
        b"retry-after": b"10",
    }


async def test_admitted_never_exceeds_rate_times_time_plus_burst(clock: Clock) -> None:
    limiter = MemoryRateLimiter(clock)
    limit = Limit(rate=10.0, burst=5)
    admitted = 0
    for _ in range(5000):  # 5 s of hits every millisecond
        clock.now += 0.001
        admitted += (await limiter.hit("k|a/b", limit)).allowed
    assert admitted <= 10 * 5 + 5
    assert admitted >= 10 * 5  # and the limiter is not stingier than promised


async def test_idle_buckets_are_forgotten_when_the_table_is_large(clock: Clock, monkeypatch) -> None:
    monkeypatch.setattr("gateway.ratelimit._PRUNE_AT", 10)
    limiter = MemoryRateLimiter(clock)
    limit = Limit(rate=1.0, burst=1)
    for i in range(10):
        await limiter.hit(f"k{i}|a/b", limit)
    clock.now += 7200
    await limiter.hit("new|a/b", limit)
    assert len(limiter._buckets) == 1
