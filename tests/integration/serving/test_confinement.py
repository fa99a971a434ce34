"""A hostile agent (built with the real `pixell build`) tries every escape from its instance; each
attempt fails with the error it would see in a container, and the neighbour and the platform
(this test process stands in for it) keep serving. Real instances, real kernel mechanisms:
Landlock and, where the platform may make them, cgroups."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from serving import Controller, Limits, RevisionSpec, ServingSettings
from serving.landlock import abi
from tests.support.apkgs import build_apkg

pytestmark = [pytest.mark.integration, pytest.mark.slow]
NOSY = Path(__file__).parent / "nosy-agent"
MEMORY = 256 << 20
LIMITS = Limits(memory_bytes=MEMORY, max_processes=64, max_file_bytes=16 << 20)

if abi() < 6 and os.environ.get("CI") != "true":
    reason = f"this kernel's Landlock ABI is {abi()}; the full confinement needs 6 (Linux 6.12+)"
    pytest.skip(reason, allow_module_level=True)


@pytest.fixture(scope="module")
def nosy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_apkg(NOSY, tmp_path_factory.mktemp("nosy"))


@pytest.fixture(scope="module")
def platform_ports() -> Iterator[dict[str, socket.socket]]:
    """Listening stand-ins: the gateway (instances may call it) and the registry (they may not)."""
    sockets = {}
    for name in ("gateway", "registry"):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        sockets[name] = sock
    yield sockets
    for sock in sockets.values():
        sock.close()


@pytest.fixture
async def serving(
    tmp_path: Path, nosy_dir: Path, platform_ports: dict[str, socket.socket]
) -> AsyncIterator[Controller]:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "admin.key").write_text("par_secret\n")
    (data / "admin.key").chmod(0o600)
    settings = ServingSettings(data_dir=data, isolation="required", scale_to_zero_after=60)
    gateway_port = platform_ports["gateway"].getsockname()[1]
    async with Controller(settings, connect_ports=[gateway_port]) as controller:
        sha = hashlib.sha256(nosy_dir.read_bytes()).hexdigest()  # noqa: ASYNC240 - a few KiB
        package = await controller.preparer.prepare(sha, nosy_dir, lambda _line: None)
        for name in ("nosy", "neighbour"):
            spec = RevisionSpec("default", name, "0.1.0", package, limits=LIMITS)
            await controller.apply("default", name, [spec], {"0.1.0": 100})
        yield controller


async def act(serving: Controller, agent: str = "nosy", **data: Any) -> dict[str, Any]:
    async with serving.activator.acquire("default", agent) as url, httpx.AsyncClient(timeout=60) as client:
        response = await client.post(f"{url}/invoke", json=data)
    assert response.status_code == 200, response.text
    return dict(response.json())


def refused(answer: dict[str, Any], code: int = errno.EACCES) -> bool:
    return answer["ok"] is False and answer["errno"] == code


async def test_files_outside_its_own_folders_are_unreadable_and_unwritable(serving: Controller) -> None:
    data = serving.settings.data_dir
    for secret in (data / "admin.key", Path.home() / ".bashrc", Path("/etc/shadow")):
        if secret.exists():
            assert refused(await act(serving, act="read", path=str(secret))), secret
    await act(serving, "neighbour", act="whoami")
    assert refused(await act(serving, act="read", path=str(data / "logs" / "default.neighbour.0.1.0.log")))
    other_agent = data / "prepared" / ("f" * 64) / "agent.yaml"  # another agent's prepared package
    other_agent.parent.mkdir(parents=True)
    other_agent.write_text("name: other\n")
    assert refused(await act(serving, act="read", path=str(other_agent)))
    for target in (data / "planted", Path("/tmp/par-planted"), Path.home() / "planted"):
        assert refused(await act(serving, act="write", path=str(target))), target
        assert not target.exists()
    # Its own package and folders are there for it.
    own = next(p for p in (data / "prepared").rglob("agent.yaml") if p != other_agent)
    assert (await act(serving, act="read", path=str(own)))["ok"]
    assert (await act(serving, act="write", path="~/notes.txt", bytes=10))["ok"]


async def test_no_signal_or_proc_access_outside_its_instance(serving: Controller) -> None:
    neighbour = await act(serving, "neighbour", act="whoami")
    assert refused(await act(serving, act="environ", pid=os.getpid()))
    assert refused(await act(serving, act="kill", pid=os.getpid(), signal=signal.SIGCONT), errno.EPERM)
    assert refused(await act(serving, act="kill", pid=neighbour["pid"]), errno.EPERM)
    assert (await act(serving, "neighbour", act="whoami"))["pid"] == neighbour["pid"]  # alive, same


async def test_a_kill_of_everything_reaches_nothing_outside_its_instance(serving: Controller) -> None:
    neighbour = await act(serving, "neighbour", act="whoami")
    answer = await act(serving, act="kill-platform", up_to=max(os.getpid(), neighbour["pid"]) + 1000)
    assert answer["killed"] == [] and answer["refused"] > 0
    assert (await act(serving, "neighbour", act="whoami"))["pid"] == neighbour["pid"]


async def test_network_only_to_the_gateway_and_outbound_ports(
    serving: Controller, platform_ports: dict[str, socket.socket]
) -> None:
    neighbour = await act(serving, "neighbour", act="whoami")
    assert refused(await act(serving, act="connect", port=platform_ports["registry"].getsockname()[1]))
    assert refused(await act(serving, act="connect", port=neighbour["port"]))
    assert (await act(serving, act="connect", port=platform_ports["gateway"].getsockname()[1]))["ok"]
    assert refused(await act(serving, act="bind", port=0))  # only its own port


async def test_memory_over_the_limit_kills_only_that_instance(serving: Controller) -> None:
    before = await act(serving, act="whoami")
    neighbour = await act(serving, "neighbour", act="whoami")
    if serving.confiner.cgroups is None:
        answer = await act(serving, act="alloc", mb=(MEMORY >> 20) + 1200)
        assert answer["ok"] is False and answer["error"].startswith("MemoryError")
        return
    with pytest.raises(httpx.HTTPError):
        await act(serving, act="alloc", mb=(MEMORY >> 20) * 2)
    async with asyncio.timeout(10):  # the exit is seen a moment after the connection broke
        while not (_revision(serving, "nosy").last_error or "").startswith("OOMKilled"):
            await serving.wait_changed(serving.generation)
    assert (await act(serving, act="whoami"))["pid"] != before["pid"]  # replaced
    assert (await act(serving, "neighbour", act="whoami"))["pid"] == neighbour["pid"]


async def test_processes_and_file_size_are_bounded(serving: Controller) -> None:
    forked = await act(serving, act="fork-loop", count=1000, linger=2)
    assert forked["ok"] and forked["forked"] < LIMITS.max_processes
    assert "Resource temporarily unavailable" in forked["stopped_by"]
    filled = await act(serving, act="fill", bytes=LIMITS.max_file_bytes * 2)
    assert refused(filled, errno.EFBIG)
    assert (await act(serving, "neighbour", act="whoami"))["ok"]


async def test_status_says_what_confines_it(serving: Controller) -> None:
    await act(serving, act="whoami")
    confinement = _revision(serving, "nosy").confinement
    assert confinement.startswith("confined: filesystem, network, signals, limits")


def _revision(serving: Controller, agent: str) -> Any:
    status = serving.status("default", agent)
    assert status is not None
    return status.revisions[0]
