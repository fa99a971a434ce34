"""Landlock, the unprivileged Linux sandbox, through its three system calls (ctypes, no C build).

`restrict(...)` confines the calling process and everything it starts, for good: filesystem
access only beneath the paths given (read-only or read-write), TCP bind and connect only on the
ports given (ABI 4+), and signals and abstract Unix sockets only within the same sandbox (ABI 6+).
Landlock also refuses ptrace — and so `/proc/<pid>/environ`, `mem`, `maps` — of any process
outside the sandbox. Each instance restricts itself separately, so neighbours are outside too.
Rights the running kernel does not know are left out (best effort by ABI, as the kernel docs advise);
`abi()` tells what is there. Constants from include/uapi/linux/landlock.h.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable

_SYS = {"create_ruleset": 444, "add_rule": 445, "restrict_self": 446}  # same on x86_64 and arm64
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_RULE_NET_PORT = 2
_PR_SET_NO_NEW_PRIVS = 38

FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
_FS_ABI1 = (1 << 13) - 1  # execute .. make_sym
_FS_BY_ABI = {1: _FS_ABI1, 2: _FS_ABI1 | 1 << 13, 3: _FS_ABI1 | 3 << 13, 5: _FS_ABI1 | 7 << 13}
_FS_FILE_ONLY = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | 1 << 14 | 1 << 15  # truncate, ioctl_dev
READ_ONLY = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
NET_BIND_TCP = 1 << 0
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
SCOPE_SIGNAL = 1 << 1


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _NetPort(ctypes.Structure):
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


class LandlockUnavailable(OSError):
    """The kernel has no Landlock (or it is disabled); the message says which."""


_libc = ctypes.CDLL(None, use_errno=True)


def _call(name: str, *args: object) -> int:
    result = int(_libc.syscall(_SYS[name], *args))
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"landlock_{name}: {os.strerror(errno)}")
    return result


def abi() -> int:
    """The Landlock ABI version of the running kernel; 0 when there is none."""
    try:
        return _call("create_ruleset", None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    except OSError:
        return 0


def _fs_rights(version: int) -> int:
    return next(_FS_BY_ABI[v] for v in sorted(_FS_BY_ABI, reverse=True) if v <= version)


def restrict(
    read_only: Iterable[str],
    read_write: Iterable[str],
    bind_ports: Iterable[int],
    connect_ports: Iterable[int],
    list_only: Iterable[str] = (),
) -> int:
    """Confine this process (and its future children) for good; returns the ABI used.

    `list_only` directories may be listed but not read (Python's import system lists each
    `sys.path` entry). Paths that do not exist are skipped."""
    version = abi()
    if version < 1:
        raise LandlockUnavailable("this kernel has no Landlock (Linux 5.13+ with landlock in lsm=)")
    fs = _fs_rights(version)
    attr = _RulesetAttr(handled_access_fs=fs)
    if version >= 4:
        attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP
    if version >= 6:
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
    size = ctypes.sizeof(_RulesetAttr) if version >= 6 else 16 if version >= 4 else 8
    ruleset = _call("create_ruleset", ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    try:
        for rights, paths in ((READ_ONLY, read_only), (fs, read_write), (FS_READ_DIR, list_only)):
            for path in paths:
                _allow_path(ruleset, path, rights & fs)
        if version >= 4:
            for rights, ports in ((NET_BIND_TCP, bind_ports), (NET_CONNECT_TCP, connect_ports)):
                for port in sorted(set(ports)):
                    rule = _NetPort(allowed_access=rights, port=port)
                    _call("add_rule", ruleset, _RULE_NET_PORT, ctypes.byref(rule), ctypes.c_uint32(0))
        if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        _call("restrict_self", ruleset, ctypes.c_uint32(0))
    finally:
        os.close(ruleset)
    return version


def _allow_path(ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        if not os.path.isdir(path):
            rights &= _FS_FILE_ONLY  # directory rights on a file are an EINVAL
        rule = _PathBeneath(allowed_access=rights, parent_fd=fd)
        _call("add_rule", ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), ctypes.c_uint32(0))
    finally:
        os.close(fd)
