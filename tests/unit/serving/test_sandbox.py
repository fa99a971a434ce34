"""The confinement decisions that do not need a process: what a kernel without Landlock or a
writable cgroup means (simulated by answering ABI 0 and no cgroups: such a kernel cannot run
here), and the quantities deployments write limits in."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime import quantity
from serving import IsolationRequired, Limits, RevisionSpec
from serving import sandbox as sandbox_module
from serving.sandbox import Confiner


@pytest.fixture
def bare_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel with no Landlock and no cgroup PAR may write (simulated)."""
    monkeypatch.setattr(sandbox_module.landlock, "abi", lambda: 0)
    monkeypatch.setattr(sandbox_module.Cgroups, "detect", classmethod(lambda cls: None))


def test_isolation_required_refuses_a_kernel_that_cannot_confine(bare_kernel: None, tmp_path: Path) -> None:
    with pytest.raises(IsolationRequired) as info:
        Confiner(tmp_path, required=True, outbound_ports=(443,))
    assert "PAR_ISOLATION=required" in str(info.value) and "Landlock" in str(info.value)


def test_without_mechanisms_instances_are_said_unconfined_and_bounded_by_rlimits(
    bare_kernel: None, tmp_path: Path
) -> None:
    confiner = Confiner(tmp_path, required=False, outbound_ports=(443,))
    assert confiner.describe() == "unconfined (rlimits only)"
    spec = RevisionSpec("default", "a", "1", tmp_path, limits=Limits(memory_bytes=256 << 20))
    confined = confiner.confine(spec, 41000)
    assert confined.sandbox.landlock is False
    assert confined.sandbox.rlimits["RLIMIT_AS"] > 256 << 20
    assert (confined.folder / "work").stat().st_mode & 0o777 == 0o700
    confined.release()
    assert not confined.folder.exists()


def test_the_instance_may_reach_its_sink_and_the_outbound_ports(tmp_path: Path) -> None:
    confiner = Confiner(tmp_path, required=False, outbound_ports=(53, 443), connect_ports=(8080,))
    spec = RevisionSpec("default", "a", "1", tmp_path, env={"K_SINK": "http://127.0.0.1:9123/default/default"})
    confined = confiner.confine(spec, 41001)
    assert set(confined.sandbox.connect_ports) == {8080, 53, 443, 9123}
    assert str(tmp_path) in confined.sandbox.read_only  # its package
    confined.release()


@pytest.mark.parametrize(
    ("text", "as_bytes"),
    [("256Mi", 256 << 20), ("1G", 10**9), ("1Gi", 1 << 30), ("1024", 1024), ("1.5Ki", 1536)],
)
def test_memory_quantities(text: str, as_bytes: int) -> None:
    assert quantity.to_bytes(text) == as_bytes


@pytest.mark.parametrize(("text", "millis"), [("500m", 500), ("1", 1000), ("1.5", 1500), ("2", 2000)])
def test_cpu_quantities(text: str, millis: int) -> None:
    assert quantity.to_millicores(text) == millis


@pytest.mark.parametrize("bad", ["", "lots", "1X", "-1", "1 Gi", "Mi"])
def test_bad_quantities_say_what_is_accepted(bad: str) -> None:
    with pytest.raises(ValueError, match="256Mi"):
        quantity.parse(bad)
