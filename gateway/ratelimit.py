"""Token-bucket rate limiting per (credential, agent): in process, or in Redis for gateway replicas.

The Redis backend is one atomic round trip (`ratelimit.lua`, run with EVALSHA) and uses the Redis
server's clock, so replicas with skewed clocks still share one exact bucket. When Redis cannot be
reached the limiter raises `LimiterUnavailable`; the caller fails closed or open by configuration.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from dataclasses import dataclass
from importlib import resources
from typing import Protocol

from gateway.policy import Limit
from gateway.settings import GatewaySettings

_PRUNE_AT = 100_000
_IDLE_FORGET = 3600.0


@dataclass(frozen=True, slots=True)
class RateResult:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # whole seconds until the bucket is full again
    retry_after: int  # whole seconds until one token is there (0 when allowed)

    def headers(self) -> list[tuple[bytes, bytes]]:
        out = [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset).encode()),
        ]
        if not self.allowed:
            out.append((b"retry-after", str(self.retry_after).encode()))
        return out


def _result(allowed: bool, tokens: float, limit: Limit) -> RateResult:
    return RateResult(
        allowed=allowed,
        limit=limit.burst,
        remaining=int(tokens),
        reset=math.ceil((limit.burst - tokens) / limit.rate),
        retry_after=0 if allowed else max(1, math.ceil((1 - tokens) / limit.rate)),
    )


class LimiterUnavailable(RuntimeError):
    """The shared limiter state cannot be reached."""


class RateLimiter(Protocol):
    async def hit(self, bucket: str, limit: Limit) -> RateResult: ...

    async def close(self) -> None: ...


class MemoryRateLimiter:
    """Buckets in a dict of `[tokens, last refill]`; exact within one process (no await inside)."""

    def __init__(self, clock=time.monotonic) -> None:
        self._buckets: dict[str, list[float]] = {}
        self._clock = clock
        self._prune_at = _PRUNE_AT

    async def hit(self, bucket: str, limit: Limit) -> RateResult:
        now = self._clock()
        state = self._buckets.get(bucket)
        if state is None:
            if len(self._buckets) >= self._prune_at:
                self._prune(now)
            state = self._buckets[bucket] = [float(limit.burst), now]
        tokens = min(limit.burst, state[0] + (now - state[1]) * limit.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        state[0], state[1] = tokens, now
        return _result(allowed, tokens, limit)

    def _prune(self, now: float) -> None:
        """Bound memory: forget buckets idle for an hour (they restart full, which is what any
        bucket refilling at least burst/3600 tokens a second would be anyway)."""
        stale = [k for k, (_, ts) in self._buckets.items() if now - ts > _IDLE_FORGET]
        for key in stale:
            del self._buckets[key]
        self._prune_at = max(_PRUNE_AT, 2 * len(self._buckets))

    async def close(self) -> None:
        return None


class RedisRateLimiter:
    """Each hit is one EVALSHA of `ratelimit.lua` (atomic per bucket). Hits that arrive in the same
    event-loop turn share one pipelined round trip: under load that divides the client's per-command
    cost by the batch size, at no added latency when idle (a lone hit is flushed at once)."""

    def __init__(self, url: str, timeout: float, max_connections: int = 64) -> None:
        import redis.asyncio as aioredis

        # A blocking pool: a burst of concurrent batches waits (up to `timeout`) for a connection
        # instead of failing with "too many connections".
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        self._redis = aioredis.Redis(connection_pool=pool)
        self._lua = resources.files("gateway").joinpath("ratelimit.lua").read_text()
        self._sha = hashlib.sha1(self._lua.encode()).hexdigest()
        self._pending: list[tuple[str, Limit, asyncio.Future]] = []
        self._tasks: set[asyncio.Task] = set()

    async def hit(self, bucket: str, limit: Limit) -> RateResult:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((f"par:rl:{bucket}", limit, future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        allowed, tokens = await future
        return _result(bool(allowed), float(tokens), limit)

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.create_task(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[str, Limit, asyncio.Future]]) -> None:
        from redis.exceptions import NoScriptError, RedisError

        try:
            results = await self._evalsha(batch)
            if any(isinstance(r, NoScriptError) for r in results):  # Redis restarted or flushed scripts
                await self._redis.script_load(self._lua)
                results = await self._evalsha(batch)
        except (RedisError, OSError) as exc:
            error = LimiterUnavailable(f"redis rate-limit backend unreachable: {exc!r}")
            results = [error] * len(batch)
        for (_, _, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(
                    result
                    if isinstance(result, LimiterUnavailable)
                    else LimiterUnavailable(f"rate-limit script failed: {result!r}")
                )
            else:
                future.set_result(result)

    async def _evalsha(self, batch: list[tuple[str, Limit, asyncio.Future]]) -> list:
        pipe = self._redis.pipeline(transaction=False)
        for key, limit, _ in batch:
            pipe.evalsha(self._sha, 1, key, limit.rate, limit.burst)
        return await pipe.execute(raise_on_error=False)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._redis.aclose(close_connection_pool=True)


def limiter_from(settings: GatewaySettings) -> RateLimiter:
    if settings.ratelimit_backend == "redis":
        return RedisRateLimiter(settings.redis_url, settings.redis_timeout, settings.redis_max_connections)
    return MemoryRateLimiter()
