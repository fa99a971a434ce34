"""The platform's side of the runtime template (`forkserver.py`): start it, ask it for
instances, learn when they exit. When the template is not (yet) ready or has died, the
launcher starts instances directly with `python -m runtime` instead."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .instance import Instance, die_with, open_log, output_start

log = logging.getLogger("par.serving.template")


class TemplateUnavailable(RuntimeError):
    """The template is not running (still starting, or it died)."""


class RuntimeTemplate:
    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self._env = dict(env)
        self._log_path = log_path
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._exits: dict[int, asyncio.Future[int | None]] = {}
        self._lock = asyncio.Lock()
        self.ready = False

    async def start(self, within: float = 120.0) -> None:
        """Start the template and wait until it has imported the runtime."""
        with open_log(self._log_path) as errors:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "serving.forkserver",
                env=self._env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=errors, start_new_session=True, preexec_fn=die_with(os.getpid()),
            )
        assert self._proc.stdout is not None
        async with asyncio.timeout(within):
            first = await self._proc.stdout.readline()
        if json.loads(first or b"{}").get("ready") is not True:
            raise TemplateUnavailable(f"runtime template did not start (exit {self._proc.returncode})")
        self._reader = asyncio.create_task(self._read())
        self.ready = True
        log.info("runtime template ready", extra={"pid": self._proc.pid})

    async def fork(
        self,
        env: Mapping[str, str],
        log_path: Path,
        port: int,
        cwd: Path,
        sandbox: dict[str, Any] | None = None,
    ) -> Instance:
        """A new instance forked from the warm template (which enters `sandbox` first)."""
        if not self.ready or self._proc is None or self._proc.stdin is None:
            raise TemplateUnavailable("runtime template not running")
        async with self._lock:  # replies come back in request order
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_start = output_start(log_path)
            request = {"env": {**env, "PORT": str(port)}, "log": str(log_path), "cwd": str(cwd),
                       "sandbox": sandbox}
            self._proc.stdin.write(json.dumps(request).encode() + b"\n")
            await self._proc.stdin.drain()
            async with asyncio.timeout(10):
                reply = await self._replies.get()
        if "pid" not in reply:
            raise TemplateUnavailable(f"runtime template refused: {reply.get('error')}")
        pid = int(reply["pid"])
        exited = self._exits.pop(pid, None)  # already exited before we got here
        if exited is None:
            exited = self._exits[pid] = asyncio.get_running_loop().create_future()
        return Instance(pid, port, log_path, log_start, exited)

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        async for line in self._proc.stdout:
            message = json.loads(line)
            if "exited" not in message:
                await self._replies.put(message)
                continue
            future = self._exits.pop(message["exited"], None)
            if future is None:  # exited before `fork` registered it
                future = self._exits[message["exited"]] = asyncio.get_running_loop().create_future()
            future.set_result(message["code"])
        if self.ready:  # not a close()
            log.warning("runtime template exited; starting instances directly")
        self.ready = False
        for future in self._exits.values():
            if not future.done():
                future.set_result(None)
        await self._replies.put({"error": "runtime template exited"})

    def kill_now(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()

    async def close(self) -> None:
        self.ready = False
        if self._proc is None:
            return
        self.kill_now()
        await self._proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
