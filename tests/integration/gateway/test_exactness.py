"""Rate-limit exactness under load: 50 concurrent clients on one key through a real authz server
are admitted at most R x t + burst times, with either limiter backend."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from gateway.authz import build_authz_app
from gateway.feed import StaticPolicy
from gateway.policy import Policy
from gateway.settings import GatewaySettings
from tests.support.gateway import HOST, make_key, serve, snapshot

pytestmark = pytest.mark.integration

RATE, BURST, CLIENTS, SECONDS = 10.0, 5, 50, 2.0


async def hammer(url: str, key: str) -> tuple[int, int, float]:
    """CLIENTS concurrent callers for SECONDS; returns (admitted, limited, elapsed)."""
    counts = {200: 0, 429: 0}
    headers = {"Host": HOST, "Authorization": f"Bearer {key}"}
    started = time.monotonic()

    async def client(http: httpx.AsyncClient) -> None:
        while time.monotonic() - started < SECONDS:
            status = (await http.get(url, headers=headers)).status_code
            counts[status] = counts.get(status, 0) + 1

    # one pool with a connection per caller (a client object each would spend the time on TLS set-up)
    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=CLIENTS)) as http:
        await asyncio.gather(*(client(http) for _ in range(CLIENTS)))
    elapsed = time.monotonic() - started
    assert set(counts) == {200, 429}, counts
    return counts[200], counts[429], elapsed


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_admitted_at_most_rate_times_time_plus_burst(backend: str, request: pytest.FixtureRequest) -> None:
    key, record = make_key(rate=RATE, burst=BURST)
    settings = GatewaySettings(ratelimit_backend=backend)
    if backend == "redis":
        settings = GatewaySettings(ratelimit_backend="redis", redis_url=request.getfixturevalue("redis_url"))
    app = build_authz_app(settings, policy=StaticPolicy(Policy.from_snapshot(snapshot([record]))))
    with serve(app) as url:
        admitted, limited, elapsed = asyncio.run(hammer(url, key))
    print(f"{backend}: admitted {admitted}, limited {limited} in {elapsed:.2f}s")
    assert limited > 0  # the clients really pushed past the limit
    assert admitted <= RATE * elapsed + BURST
    assert admitted >= BURST + RATE * 1.0  # and the limit is not stingier than promised
