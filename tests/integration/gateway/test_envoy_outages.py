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

from tests.support.envoy_ingress import (
    istio_ext_authz,
    istio_gateway_env,
    kourier_ext_authz,
    kourier_gateway_env,
)
from tests.support.envoy_stack import AGENT_HOST, Stack, echo_apkg, envoy_stack

pytestmark = pytest.mark.integration

FLAVOURS = {
    "kourier": (kourier_ext_authz, kourier_gateway_env),
    "istio": (istio_ext_authz, istio_gateway_env),
}


@pytest.fixture(scope="module", params=list(FLAVOURS))
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    ext_authz, gateway_env = FLAVOURS[request.param]
    work = tmp_path_factory.mktemp(f"envoy-outage-{request.param}")
    with envoy_stack(work, echo_apkg(work), ext_authz, gateway_env()) as running:
        running.flavour = request.param
        yield running


def seen_with(stack: Stack, key: str) -> int:
    return int(stack.agent.seen()["by_authorization"].get(f"Bearer {key}", 0))


def test_authz_service_down_fails_closed(stack: Stack) -> None:
    assert stack.get("/echo/x", stack.keys.ok).status_code == 200
    before = seen_with(stack, stack.keys.ok)
    stack.gateway.stop()
    try:
        denied = stack.get("/echo/x", stack.keys.ok)
        # Envoy's answer when the check cannot be made (no status_on_error set by either ingress)
        assert denied.status_code == 403, denied.text
        assert seen_with(stack, stack.keys.ok) == before
    finally:
        stack.gateway.start()
    assert stack.get("/echo/x", stack.keys.ok).status_code == 200


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

    assert set(statuses[bad]) <= {401, 403}, statuses
    assert seen_with(stack, bad) == 0
    assert set(statuses[good]) <= {200, 403}, statuses
    assert statuses[good][403] > 0, "the outage was not observed: the test proves nothing"
    assert statuses[good][200] == seen_with(stack, good) - good_before
