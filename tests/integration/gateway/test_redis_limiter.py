"""The Redis token bucket against a real redis-server: atomic under concurrency, shared by
replicas, self-expiring, and an explicit error when Redis is gone."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import redis.asyncio as aioredis

from gateway.policy import Limit
from gateway.ratelimit import LimiterUnavailable, RedisRateLimiter
from tests.support.redis import redis_server

pytestmark = pytest.mark.integration


def bucket() -> str:
    return f"{uuid.uuid4().hex[:12]}|default/demo-agent"


async def test_concurrent_hits_never_overdraw(redis_url: str) -> None:
    limiter = RedisRateLimiter(redis_url, timeout=2.0)
    name, limit = bucket(), Limit(rate=20.0, burst=10)
    try:
        started = time.monotonic()
        results = await asyncio.gather(*(limiter.hit(name, limit) for _ in range(300)))
        elapsed = time.monotonic() - started
        admitted = sum(r.allowed for r in results)
        assert 10 <= admitted <= 10 + 20 * elapsed + 1
        assert any(not r.allowed and r.retry_after >= 1 for r in results)
    finally:
        await limiter.close()


async def test_replicas_share_one_bucket(redis_url: str) -> None:
    replicas = [RedisRateLimiter(redis_url, timeout=2.0) for _ in range(3)]
    name, limit = bucket(), Limit(rate=0.01, burst=6)
    try:
        results = [await replicas[i % 3].hit(name, limit) for i in range(9)]
        assert [r.allowed for r in results] == [True] * 6 + [False] * 3
        assert [r.remaining for r in results[:6]] == [5, 4, 3, 2, 1, 0]
    finally:
        for limiter in replicas:
            await limiter.close()


async def test_refills_by_the_server_clock_and_expires_idle_buckets(redis_url: str) -> None:
    limiter = RedisRateLimiter(redis_url, timeout=2.0)
    client = aioredis.from_url(redis_url)
    name, limit = bucket(), Limit(rate=10.0, burst=1)
    try:
        assert (await limiter.hit(name, limit)).allowed
        assert not (await limiter.hit(name, limit)).allowed
        await asyncio.sleep(0.15)
        assert (await limiter.hit(name, limit)).allowed
        ttl = await client.pttl(f"par:rl:{name}")
        assert 0 < ttl <= 1100  # burst/rate seconds (0.1 s) plus one second of slack
    finally:
        await limiter.close()
        await client.aclose()


async def test_redis_going_away_raises_limiter_unavailable() -> None:
    with redis_server() as url:
        limiter = RedisRateLimiter(url, timeout=0.5)
        assert (await limiter.hit(bucket(), Limit(1.0, 1))).allowed
    try:
        with pytest.raises(LimiterUnavailable):
            await limiter.hit(bucket(), Limit(1.0, 1))
    finally:
        await limiter.close()
