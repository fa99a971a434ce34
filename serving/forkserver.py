"""The runtime template process: imports the runtime once, then forks one agent instance per
request, so that scale from zero skips starting an interpreter and importing FastAPI, uvicorn
and the runtime (most of a cold start). Run as `python -m serving.forkserver`
by `template.py`; it imports nothing heavy before it is asked to.

JSON lines. stdin: `{"env": {...}, "log": "/path", "cwd": "/path", "sandbox": {...}}` per instance
(the sandbox is entered before the runtime starts: `sandbox.py`). stdout: `{"ready": true}` once
warm; `{"pid": N}` or `{"error": "..."}` per request, in order; `{"exited": N, "code": C}` when
an instance ends. Only `os.write` is used on stdout, so no buffered bytes are duplicated by fork.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import os
import select
import signal
import sys
import traceback
from typing import Any, NoReturn

from serving.sandbox import enter

# Imported before the first fork: everything `python -m runtime` would import to serve.
WARM = (
    "runtime.__main__", "runtime.server", "runtime.sources", "runtime.agent", "runtime.app", "runtime.events",
    "runtime.a2a", "runtime.invoke", "runtime.observe", "runtime.contract", "runtime.rest", "runtime.tasks",
    "dotenv", "uvicorn", "uvicorn.loops.auto",
    "uvicorn.protocols.http.auto", "uvicorn.protocols.http.httptools_impl", "uvicorn.lifespan.on",
    "uvicorn.protocols.websockets.auto", "uvicorn.protocols.websockets.websockets_impl",
    "uvicorn.protocols.websockets.wsproto_impl", "uvicorn.middleware.proxy_headers", "uvloop", "httptools",
    "fastapi", "fastapi.staticfiles", "starlette.concurrency", "anyio._backends._asyncio", "httpx", "yaml",
)
_PR_SET_PDEATHSIG = 1
CONFINE_FAILED = 126  # the instance could not be confined: it never ran agent code


def _send(message: dict[str, Any]) -> None:
    os.write(1, (json.dumps(message) + "\n").encode())


def _child(request: dict[str, Any], close_fds: tuple[int, ...]) -> NoReturn:
    """In the forked instance: own session, dies with the template, output to its log, its env."""
    code = 1
    try:
        os.setsid()
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in close_fds:
            os.close(fd)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        if request.get("sandbox"):
            code = CONFINE_FAILED
            enter(request["sandbox"])
            code = 1
        from runtime.__main__ import main

        code = main([])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _reap() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send({"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def main() -> None:
    for name in WARM:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    _send({"ready": True})
    pending = b""
    while True:
        readable, _, _ = select.select([0, wake_r], [], [])
        if wake_r in readable:
            os.read(wake_r, 4096)
        _reap()
        if 0 not in readable:
            continue
        chunk = os.read(0, 65536)
        if not chunk:
            return  # the platform is gone; instances follow through PR_SET_PDEATHSIG
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            try:
                request = json.loads(line)
                pid = os.fork()
            except (OSError, ValueError) as exc:
                _send({"error": str(exc)})
                continue
            if pid == 0:
                _child(request, (0, wake_r, wake_w))
            _send({"pid": pid})


if __name__ == "__main__":
    main()
