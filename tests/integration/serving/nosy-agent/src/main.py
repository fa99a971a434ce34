"""Tries, on request, each escape a misbehaving agent might: `{"act": ..., ...}` in, what the
operating system answered out (`{"ok": true, ...}` or `{"ok": false, "error": "PermissionError: ..."}`)."""

import os
import signal
import socket
import time


def _read(data):
    with open(os.path.expanduser(data["path"]), "rb") as fh:
        return {"bytes": len(fh.read())}


def _environ(data):
    with open(f"/proc/{data['pid']}/environ", "rb") as fh:
        return {"bytes": len(fh.read())}


def _kill(data):
    os.kill(int(data["pid"]), int(data.get("signal", signal.SIGKILL)))
    return {}


def _kill_platform(data):
    """SIGKILL every process it can name but itself: the platform, its neighbours, anything."""
    with open("/proc/sys/kernel/pid_max") as fh:
        last = min(int(fh.read()), int(data.get("up_to", 1 << 22)))
    own = {int(tid) for tid in os.listdir(f"/proc/{os.getpid()}/task")}  # its threads answer to kill too
    killed, refused = [], 0
    for pid in range(2, last + 1):
        if pid in own:
            continue
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except PermissionError:
            refused += 1
        except ProcessLookupError:
            pass
    return {"killed": killed, "refused": refused}


def _connect(data):
    with socket.create_connection((data.get("host", "127.0.0.1"), int(data["port"])), timeout=5):
        return {}


def _bind(data):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", int(data["port"])))
        return {}


def _write(data):
    path = os.path.expanduser(data["path"])
    with open(path, "wb") as fh:
        fh.write(b"x" * int(data.get("bytes", 1)))
    return {"path": path}


def _fill(data):
    """Write `bytes` into a file of the private work folder, 1 MiB at a time."""
    path = os.path.join(os.environ["HOME"], "fill.bin")
    chunk = b"x" * (1 << 20)
    with open(path, "wb") as fh:
        for _ in range(int(data["bytes"]) // len(chunk)):
            fh.write(chunk)
    return {"path": path}


def _alloc(data):
    block = bytearray(int(data["mb"]) << 20)  # zero-filled: every page is touched
    return {"allocated": len(block)}


def _fork_loop(data):
    children = 0
    try:
        for _ in range(int(data.get("count", 10_000))):
            pid = os.fork()
            if pid == 0:
                time.sleep(float(data.get("linger", 3)))
                os._exit(0)
            children += 1
    except OSError as exc:
        return {"forked": children, "stopped_by": f"{type(exc).__name__}: {exc}"}
    return {"forked": children}


def _spin(data):
    """Busy loops for `seconds`, in this process and `procs - 1` forked ones (past the GIL)."""
    deadline = time.monotonic() + float(data["seconds"])
    children = []
    for _ in range(int(data.get("procs", 1)) - 1):
        pid = os.fork()
        if pid == 0:
            while time.monotonic() < deadline:
                pass
            os._exit(0)
        children.append(pid)
    n = 0
    while time.monotonic() < deadline:
        n += 1
    for pid in children:
        os.waitpid(pid, 0)
    return {"loops": n}


ACTS = {"read": _read, "environ": _environ, "kill": _kill, "kill-platform": _kill_platform,
        "connect": _connect, "bind": _bind,
        "write": _write, "fill": _fill, "alloc": _alloc, "fork-loop": _fork_loop, "spin": _spin,
        "whoami": lambda data: {"pid": os.getpid(), "port": int(os.environ["PORT"])}}


def handler(context):
    act = ACTS[context["act"]]
    try:
        return {"ok": True, **act(context)}
    except (OSError, MemoryError) as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "errno": getattr(exc, "errno", None)}
