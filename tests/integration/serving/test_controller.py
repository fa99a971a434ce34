"""Serving's controller and activator on real runtime processes: containerConcurrency queueing and
scale-up bounded by max-scale (the parts of Knative's autoscaling the `par up` tests do not load)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from serving import Controller, InstanceState, RevisionSpec, ServingSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
async def controller(tmp_path: Path) -> AsyncIterator[Controller]:
    async with Controller(ServingSettings(data_dir=tmp_path, scale_to_zero_after=30)) as running:
        yield running


@pytest.fixture
async def slow_dir(slow_apkg: Path, controller: Controller) -> Path:
    """The slow agent prepared as at deploy time."""
    sha = hashlib.sha256(slow_apkg.read_bytes()).hexdigest()  # noqa: ASYNC240 - a few KiB
    return await controller.preparer.prepare(sha, slow_apkg, lambda _line: None)


async def _invoke(controller: Controller, sleep: float) -> int:
    acquired = controller.activator.acquire("default", "slow-agent")
    async with acquired as url, httpx.AsyncClient(timeout=60) as client:
        response = await client.post(f"{url}/invoke", json={"sleep": sleep})
        assert response.status_code == 200, response.text
        return int(response.json()["pid"])


async def test_container_concurrency_queues_requests_on_one_instance(
    controller: Controller, slow_dir: Path
) -> None:
    spec = RevisionSpec("default", "slow-agent", "0.1.0", slow_dir, container_concurrency=1, max_scale=1)
    await controller.apply("default", "slow-agent", [spec], {"0.1.0": 100})
    await _invoke(controller, 0)  # cold start out of the timing

    started = time.monotonic()
    pids = await asyncio.gather(*(_invoke(controller, 0.5) for _ in range(3)))

    assert len(set(pids)) == 1
    assert time.monotonic() - started >= 1.5  # one at a time: queued, not run side by side


async def test_scale_up_follows_target_and_stops_at_max_scale(controller: Controller, slow_dir: Path) -> None:
    spec = RevisionSpec("default", "slow-agent", "0.1.0", slow_dir, target=1, max_scale=2)
    await controller.apply("default", "slow-agent", [spec], {"0.1.0": 100})

    # 4 in flight with target 1 wants 4 instances; max-scale caps the scale-up at 2.
    await asyncio.gather(*(_invoke(controller, 1.0) for _ in range(4)))
    async with asyncio.timeout(30):
        while len(states := _states(controller)) != 2 or set(states) != {InstanceState.READY}:
            assert len(states) <= 2, states
            await asyncio.sleep(0.05)

    # Both warm: requests are spread over them (least in flight first).
    pids = await asyncio.gather(*(_invoke(controller, 0.5) for _ in range(4)))
    assert len(set(pids)) == 2, pids
    status = controller.status("default", "slow-agent")
    assert status is not None and status.instances == 2


def _states(controller: Controller) -> list[InstanceState]:
    status = controller.status("default", "slow-agent")
    assert status is not None
    revision = status.revisions[0]
    return [i.state for i in revision.instances] + [InstanceState.STARTING] * revision.starting
