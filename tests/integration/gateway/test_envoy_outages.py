"""The ext_authz service away or restarting behind a real Envoy: the ingress fails closed
(`KOURIER_EXTAUTHZ_FAILUREMODEALLOW=false`, Istio `failOpen: false`) and no request reaches the
agent without the gateway having allowed it."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests.support.envoy_stack import AGENT_HOST, Stack, envoy_stack
from tests.support.net import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["kourier", "istio"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with envoy_stack(request.param, tmp_path_factory.mktemp(f"envoy-outage-{request.param}")) as running:
        yield running


def seen_with(stack: Stack, key: str) -> int:
    return int(stack.agent.seen()["by_authorization"].get(f"Bearer {key}", 0))


# Envoy's answer when a check fails (no answer, or a 5xx): status_on_error, empty. Kourier has no
# setting for it (Envoy's default, 403); PAR's Istio provider sets statusOnError 503.
FAILED_CHECK = {"kourier": 403, "istio": 503}


def assert_failed_check(stack: Stack, key: str) -> None:
    before = seen_with(stack, key)
    response = stack.get("/echo/x", key)
    assert response.status_code == FAILED_CHECK[stack.flavour], response.text
    assert seen_with(stack, key) == before


def test_authz_service_down_fails_closed(stack: Stack) -> None:
    assert stack.get("/echo/x", stack.keys.ok).status_code == 200
    stack.gateway.stop()
    try:
        assert_failed_check(stack, stack.keys.ok)
    finally:
        stack.gateway.start()
    assert stack.get("/echo/x", stack.keys.ok).status_code == 200


def test_a_gateway_503_is_a_failed_check_at_the_client(stack: Stack) -> None:
    """The gateway fails closed with 503 when its Redis limiter is away; through Envoy that is a
    failed check, never an allow."""
    saved = dict(stack.gateway.env)
    stack.gateway.stop()
    stack.gateway.env.update(
        PAR_GATEWAY_RATELIMIT_BACKEND="redis", PAR_GATEWAY_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"
    )
    try:
        stack.gateway.start()
        assert_failed_check(stack, stack.keys.limited)
    finally:
        stack.gateway.stop()
        stack.gateway.env = saved
        stack.gateway.start()


def test_gateway_restarted_under_load_allows_nothing_undecided(stack: Stack) -> None:
    """Clients with a good and a bad key hammer Envoy while the gateway restarts: every request the
    agent sees is one a client got 200 for, the bad key never reaches it, and the outage is denied."""
    good, bad = stack.keys.ok, "par_000000000000_never-issued-secret"
    statuses: dict[str, Counter[int]] = {good: Counter(), bad: Counter()}
    stop = threading.Event()
    good_before = seen_with(stack, good)

    def hammer(key: str) -> None:
        with httpx.Client(base_url=stack.envoy.url, timeout=10) as client:
            headers = {"Host": AGENT_HOST, "Authorization": f"Bearer {key}"}
            while not stop.is_set():
                try:
                    statuses[key][client.get("/echo/load", headers=headers).status_code] += 1
                except httpx.HTTPError:
                    statuses[key][0] += 1

    threads = [threading.Thread(target=hammer, args=(key,)) for key in (good, good, bad, bad)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        stack.gateway.stop()
        time.sleep(0.5)
        stack.gateway.start()
        time.sleep(1.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=20)

    assert seen_with(stack, bad) == 0
    failed = FAILED_CHECK[stack.flavour]
    assert set(statuses[bad]) <= {401, failed}, statuses
    assert set(statuses[good]) <= {200, failed}, statuses
    assert statuses[good][failed] > 0, "the outage was not observed: the test proves nothing"
    assert statuses[good][200] == seen_with(stack, good) - good_before
