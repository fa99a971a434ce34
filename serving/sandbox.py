"""Confining an instance as a container would, without root, Docker or a lost fork-template start.

The platform (`Confiner`) decides, per instance, what it may touch and makes its private folders
and cgroups; the instance's own process applies it (`enter`) right after fork (or in the
`preexec_fn` before exec), before any agent code runs:
1. join its cgroups (memory, CPU, processes — where the platform may make them, `cgroups.py`);
2. rlimits: open files, file size, and without a cgroup address space and process count;
3. Landlock (`landlock.py`): read-only the interpreter, the runtime, system libraries and the
   instance's prepared package; read-write its private work and temporary folders; TCP bind on
   its own port only; TCP connect only to the gateway, its K_SINK and the allowed outbound
   ports; signals, ptrace and abstract Unix sockets only within itself.

`PAR_ISOLATION=required` refuses to start an instance the kernel cannot confine; the default
(`auto`) confines with what the kernel has and says once what it lacks.
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import sys
import sysconfig
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import runtime

from . import landlock
from .cgroups import Cgroups, InstanceCgroup
from .types import Limits, RevisionSpec

log = logging.getLogger("par.serving.sandbox")

_SYSTEM_READ_ONLY = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/sys", "/dev/urandom",
                     "/dev/random")
# Of /proc, the instance's own process and the machine-wide files libraries read. Landlock refuses
# ptrace of outsiders, but this kernel still lets `/proc/<pid>/environ` and `maps` be read.
_PROC = ("meminfo", "cpuinfo", "stat", "loadavg", "uptime", "filesystems", "sys/kernel", "sys/vm")
# What a Python program needs of /etc: name resolution, TLS roots, time zone, users.
_ETC = ("resolv.conf", "hosts", "nsswitch.conf", "host.conf", "gai.conf", "ssl", "ca-certificates",
        "pki", "localtime", "timezone", "passwd", "group", "mime.types", "protocols", "services")
_DEVICES_READ_WRITE = ("/dev/null", "/dev/zero", "/dev/full")
# Without a memory cgroup, the address space is the only bound: the limit plus what a Python
# process maps without using it (thread stacks, arenas).
_ADDRESS_SPACE_SLACK = 1 << 30


class IsolationRequired(RuntimeError):
    """PAR_ISOLATION=required and this kernel cannot confine an instance; the message says why."""


@dataclass(frozen=True)
class Sandbox:
    """What one instance may do; crosses to the runtime template as JSON."""

    read_only: tuple[str, ...]
    read_write: tuple[str, ...]
    list_only: tuple[str, ...]
    bind_ports: tuple[int, ...]
    connect_ports: tuple[int, ...]
    cgroup_procs: tuple[str, ...]
    rlimits: dict[str, int] = field(default_factory=dict)  # resource.RLIMIT_* name -> soft=hard
    landlock: bool = True

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def enter(sandbox: dict) -> None:  # type: ignore[type-arg]  # JSON from the platform
    """Apply a sandbox to this process, for good. Runs in the instance before agent code."""
    for procs in sandbox["cgroup_procs"]:
        Path(procs).write_text(str(os.getpid()))
    for name, value in sandbox["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))
    if sandbox["landlock"]:
        own_proc = [f"/proc/{os.getpid()}", *(f"/proc/{name}" for name in _PROC)]
        landlock.restrict(
            [*sandbox["read_only"], *own_proc], sandbox["read_write"], sandbox["bind_ports"],
            sandbox["connect_ports"], list_only=sandbox["list_only"],
        )


@dataclass
class Confined:
    """One instance's sandbox and what the platform made for it (removed when it ends)."""

    sandbox: Sandbox
    folder: Path
    cgroup: InstanceCgroup | None
    limits: Limits  # in force: the deployment's, else the platform's defaults

    @property
    def env(self) -> dict[str, str]:
        return {"HOME": str(self.folder / "work"), "TMPDIR": str(self.folder / "tmp")}

    def oom_killed(self) -> bool:
        return self.cgroup is not None and self.cgroup.oom_kills() > 0

    def release(self) -> None:
        if self.cgroup is not None:
            self.cgroup.remove()
        shutil.rmtree(self.folder, ignore_errors=True)


class Confiner:
    """The platform's side: which mechanisms this kernel has, and each instance's sandbox."""

    def __init__(
        self,
        folder: Path,
        *,
        required: bool,
        outbound_ports: tuple[int, ...],
        connect_ports: tuple[int, ...] = (),
        defaults: Limits = Limits(),
    ) -> None:
        self._folder = folder
        self._outbound = outbound_ports
        self._connect = connect_ports
        self._defaults = defaults
        self.landlock_abi = landlock.abi()
        self.cgroups = Cgroups.detect()
        missing = self.missing()
        if missing and required:
            raise IsolationRequired(f"PAR_ISOLATION=required, but this kernel lacks {', '.join(missing)}")
        if missing:
            log.warning("instances run partly unconfined", extra={"missing": ", ".join(missing)})
        self._read_only = _read_only_paths()
        self._list_only = tuple(p for p in sys.path if p and os.path.isdir(p))
        self._sequence = 0

    def allow_connect(self, *ports: int) -> None:
        """Platform ports every instance may call, known once they are bound (the gateway's)."""
        self._connect = (*self._connect, *ports)

    def missing(self) -> list[str]:
        """What this kernel cannot do for PAR: each entry names the mechanism and the loss."""
        lacks = []
        if self.landlock_abi < 1:
            lacks.append("Landlock (filesystem, network, signal confinement)")
        elif self.landlock_abi < 4:
            lacks.append("Landlock ABI 4 (network confinement)")
        elif self.landlock_abi < 6:
            lacks.append("Landlock ABI 6 (signal scoping)")
        if self.cgroups is None:
            lacks.append("a writable cgroup (memory enforced by address space only, no CPU share)")
        return lacks

    def describe(self) -> str:
        """One line for status: what confines an instance here."""
        if self.landlock_abi < 1 and self.cgroups is None:
            return "unconfined (rlimits only)"
        parts = []
        if self.landlock_abi >= 1:
            parts.append("filesystem")
        if self.landlock_abi >= 4:
            parts.append("network")
        if self.landlock_abi >= 6:
            parts.append("signals")
        via = f"cgroup v{self.cgroups.version}" if self.cgroups else "rlimits"
        parts.append(f"limits ({via})")
        return "confined: " + ", ".join(parts)

    def confine(self, spec: RevisionSpec, port: int) -> Confined:
        """Private folders, cgroups and the sandbox for one new instance listening on `port`."""
        return self._confine(
            f"{spec.namespace}.{spec.agent}.{spec.version}.{port}",
            self._limits(spec.limits),
            read_only=(str(spec.package_dir),),
            read_write=(),
            bind_ports=(port,),
            connect_ports=(*self._connect, *self._outbound, *_sink_port(spec)),
        )

    def confine_preparation(self, staging: Path, limits: Limits) -> Confined:
        """The sandbox `par runtime prepare` runs in. The build code of a package's requirements
        (an sdist's setup.py, a build backend) is the agent's code too: it may write only
        `staging` and its private folders, connect only to the outbound ports (to fetch
        packages), and reach nothing of the platform (no gateway port, no data folder)."""
        return self._confine(
            f"prepare.{staging.name}", limits, read_only=(), read_write=(str(staging),), bind_ports=(),
            connect_ports=self._outbound,
        )

    def _confine(
        self,
        name: str,
        limits: Limits,
        *,
        read_only: tuple[str, ...],
        read_write: tuple[str, ...],
        bind_ports: tuple[int, ...],
        connect_ports: tuple[int, ...],
    ) -> Confined:
        self._sequence += 1
        name = f"{name}.{self._sequence}"
        folder = self._folder / name
        for private in ("work", "tmp"):
            (folder / private).mkdir(parents=True, mode=0o700, exist_ok=True)
        cgroup = self.cgroups.create(name, limits) if self.cgroups is not None else None
        sandbox = Sandbox(
            read_only=(*self._read_only, *read_only),
            read_write=(str(folder / "work"), str(folder / "tmp"), *read_write, *_DEVICES_READ_WRITE),
            list_only=self._list_only,
            bind_ports=bind_ports,
            connect_ports=connect_ports,
            cgroup_procs=cgroup.procs if cgroup is not None else (),
            rlimits=self._rlimits(limits, cgroup),
            landlock=self.landlock_abi >= 1,
        )
        return Confined(sandbox, folder, cgroup, limits)

    def _limits(self, asked: Limits) -> Limits:
        return Limits(
            memory_bytes=asked.memory_bytes or self._defaults.memory_bytes,
            cpu_millis=asked.cpu_millis or self._defaults.cpu_millis,
            max_processes=asked.max_processes,
            max_open_files=asked.max_open_files,
            max_file_bytes=asked.max_file_bytes,
        )

    def _rlimits(self, limits: Limits, cgroup: InstanceCgroup | None) -> dict[str, int]:
        rlimits = {"RLIMIT_NOFILE": limits.max_open_files, "RLIMIT_FSIZE": limits.max_file_bytes,
                   "RLIMIT_CORE": 0}
        if cgroup is None and limits.memory_bytes is not None:
            rlimits["RLIMIT_AS"] = limits.memory_bytes + _ADDRESS_SPACE_SLACK
        pids_cgroup = self.cgroups is not None and "pids" in self.cgroups.controllers
        if not pids_cgroup and os.getuid() != 0:  # root is exempt from RLIMIT_NPROC
            rlimits["RLIMIT_NPROC"] = _user_processes() + limits.max_processes
        return rlimits


def _read_only_paths() -> tuple[str, ...]:
    paths = {sys.base_prefix, sys.prefix, str(Path(runtime.__file__).parent)}
    paths |= {p for name in ("stdlib", "platstdlib", "purelib", "platlib") if (p := sysconfig.get_path(name))}
    paths |= {f"/etc/{name}" for name in _ETC}
    paths |= set(_SYSTEM_READ_ONLY)
    return tuple(sorted(paths))


def _sink_port(spec: RevisionSpec) -> tuple[int, ...]:
    """The instance may post events to its broker (K_SINK)."""
    sink = spec.env.get("K_SINK")
    if not sink:
        return ()
    url = urlsplit(sink)
    return (url.port or (443 if url.scheme == "https" else 80),)


def _user_processes() -> int:
    """Processes of this user now: RLIMIT_NPROC counts them all, the platform's included."""
    uid = os.getuid()
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                count += entry.stat().st_uid == uid
            except OSError:
                continue
    return count

