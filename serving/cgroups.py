"""Per-instance cgroups: memory, CPU and process limits the kernel enforces.

Used where the platform may create cgroups: cgroup v2 when its own cgroup is delegated to it
(a systemd user session, a container with its own cgroup namespace) and v1 controllers mounted
writable (root on a hybrid host). Elsewhere `Cgroups.detect()` is None and the sandbox falls
back to rlimits. An instance's process joins its cgroups itself, before it runs agent code;
the kernel then OOM-kills inside the cgroup only, and `oom_kills()` tells the platform why an
instance died (Kubernetes' `OOMKilled`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from .types import Limits

ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "cpu", "pids")
# A short period: a throttled instance runs in slices of a few ms, not a 100 ms burst that
# a neighbour waits behind (the default period is what makes CPU limits spiky in Kubernetes).
_CPU_PERIOD_US = 10_000


@dataclass(frozen=True)
class InstanceCgroup:
    dirs: tuple[Path, ...]  # one per hierarchy (v2: one)
    memory_dir: Path | None

    @property
    def procs(self) -> tuple[str, ...]:
        """The `cgroup.procs` files the instance writes its pid into."""
        return tuple(str(d / "cgroup.procs") for d in self.dirs)

    def oom_kills(self) -> int:
        """How many processes the kernel killed for going over the memory limit."""
        if self.memory_dir is None:
            return 0
        for name in ("memory.events", "memory.oom_control"):  # v2, v1
            with contextlib.suppress(OSError):
                for line in (self.memory_dir / name).read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        return 0

    def remove(self) -> None:
        """Kill what is left inside (a grandchild in its own session) and remove the cgroups."""
        for directory in self.dirs:
            with contextlib.suppress(OSError):
                for pid in (directory / "cgroup.procs").read_text().split():
                    with contextlib.suppress(OSError):
                        os.kill(int(pid), signal.SIGKILL)
        for directory in self.dirs:
            for _ in range(50):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # busy until the killed processes are reaped
                    time.sleep(0.01)


class Cgroups:
    """Where instance cgroups are made: `{parent}/par-{name}` in each hierarchy."""

    def __init__(self, version: int, parents: dict[str, Path]) -> None:
        self.version = version
        self._parents = parents  # controller -> parent directory

    @property
    def controllers(self) -> tuple[str, ...]:
        return tuple(c for c in CONTROLLERS if c in self._parents)

    @classmethod
    def detect(cls) -> Cgroups | None:
        """v2 if delegated to this process, else writable v1 controllers, else None."""
        own = _own_paths()
        if (ROOT / "cgroup.controllers").is_file() and "" in own:
            return cls._v2(ROOT / own[""].lstrip("/"))
        parents = {}
        for controller in CONTROLLERS:
            mount = ROOT / controller
            if controller in own and (mount / "cgroup.procs").is_file():
                parent = mount / own[controller].lstrip("/")
                if os.access(parent, os.W_OK):
                    parents[controller] = parent
        return cls(1, parents) if "memory" in parents else None

    @classmethod
    def _v2(cls, own: Path) -> Cgroups | None:
        """Move this process into a leaf of its own cgroup so that its children may have
        controllers (cgroup v2 allows processes only in leaves)."""
        try:
            available = (own / "cgroup.controllers").read_text().split()
            wanted = [c for c in CONTROLLERS if c in available]
            if "memory" not in wanted:
                return None
            leaf = own / "par-platform"
            leaf.mkdir(exist_ok=True)
            (leaf / "cgroup.procs").write_text(str(os.getpid()))
            (own / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in wanted))
        except OSError:
            return None
        return cls(2, dict.fromkeys(wanted, own))

    def create(self, name: str, limits: Limits) -> InstanceCgroup:
        """The instance's cgroups with its limits set (raises OSError if the kernel refuses)."""
        made: dict[str, Path] = {}
        for controller, parent in self._parents.items():
            directory = parent / f"par-{name}"
            directory.mkdir(exist_ok=True)
            made[controller] = directory
        dirs = tuple(dict.fromkeys(made.values()))
        group = InstanceCgroup(dirs, made.get("memory"))
        try:
            self._limit(made, limits)
        except OSError:
            group.remove()
            raise
        return group

    def _limit(self, made: dict[str, Path], limits: Limits) -> None:
        v2 = self.version == 2
        if limits.memory_bytes is not None and "memory" in made:
            memory = made["memory"]
            (memory / ("memory.max" if v2 else "memory.limit_in_bytes")).write_text(str(limits.memory_bytes))
            swap = memory / ("memory.swap.max" if v2 else "memory.memsw.limit_in_bytes")
            with contextlib.suppress(OSError):  # no swap accounting: nothing to close
                swap.write_text("0" if v2 else str(limits.memory_bytes))
        if limits.cpu_millis is not None and "cpu" in made:
            quota = limits.cpu_millis * _CPU_PERIOD_US // 1000
            # Kubernetes' weight for a CPU amount (millicores * 1024 / 1000 shares): under
            # contention the platform's own processes (1024) come before a sub-core instance.
            shares = max(2, limits.cpu_millis * 1024 // 1000)
            if v2:
                (made["cpu"] / "cpu.max").write_text(f"{quota} {_CPU_PERIOD_US}")
                (made["cpu"] / "cpu.weight").write_text(str(1 + (shares - 2) * 9999 // 262142))
            else:
                (made["cpu"] / "cpu.cfs_period_us").write_text(str(_CPU_PERIOD_US))
                (made["cpu"] / "cpu.cfs_quota_us").write_text(str(quota))
                (made["cpu"] / "cpu.shares").write_text(str(shares))
        if "pids" in made:
            (made["pids"] / "pids.max").write_text(str(limits.max_processes))


def _own_paths() -> dict[str, str]:
    """controller -> this process's cgroup path ("" for the v2 hierarchy)."""
    paths: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                paths[controller] = path
    return paths
