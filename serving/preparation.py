"""Prepare each deployed APKG once, at deploy time, with `par runtime prepare`, confined.

Prepared folders are keyed by the package's SHA-256, so a re-deploy, a traffic change or a
second `par up` on the same data folder reuses them and scale from zero only starts a process.
The preparation runs in a child process (it may install dependencies for minutes) inside the
sandbox an instance gets (`Confiner.confine_preparation`): installing requirements runs their
build code, which is the agent's code. Its output lines are passed on as progress; it is
stopped after the wall-time limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx

from .instance import die_with
from .launcher import base_env
from .sandbox import Confined, Confiner
from .types import Limits

# `par runtime prepare`, straight from the runtime component (serving imports no CLI above it).
_PREPARE = (sys.executable, "-c", "from runtime.cli import app; app()", "prepare")
_DONE = ".par-prepared"


class PrepareFailed(RuntimeError):
    """`par runtime prepare` rejected the package, failed or ran out of time; the message
    carries the cause in one line."""


class Preparer:
    """Prepares packages into `root/<sha256>`, each in its own sandbox with `limits`."""

    def __init__(self, root: Path, confiner: Confiner, limits: Limits, timeout: float) -> None:
        self.root = root
        self._confiner = confiner
        self._limits = limits
        self._timeout = timeout

    async def prepare(self, sha256: str, source: Path | str, progress: Callable[[str], None]) -> Path:
        """Return the prepared folder for package `sha256`, preparing it from `source` (a
        local path or an artifact URL) if it is not there yet."""
        target = self.root / sha256
        self.root.mkdir(parents=True, exist_ok=True)
        if (target / _DONE).exists():
            return target
        with tempfile.TemporaryDirectory(dir=self.root, prefix=".prepare-") as tmp:
            apkg = Path(tmp) / "package.apkg"  # inside the sandbox's one writable folder
            if str(source).startswith(("http://", "https://")):
                progress(f"downloading {source}")
                await _download(str(source), apkg)
            else:
                shutil.copyfile(source, apkg)
            staging = Path(tmp) / "prepared"
            progress(f"preparing {Path(source).name}")
            confined = self._confiner.confine_preparation(Path(tmp), self._limits)
            try:
                await self._run(apkg, staging, target, confined, progress)
            finally:
                confined.release()
            (staging / _DONE).write_text(sha256)
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
        return target

    async def _run(
        self, apkg: Path, into: Path, final: Path, confined: Confined, progress: Callable[[str], None]
    ) -> None:
        private = confined.env
        cache = str(Path(private["HOME"]) / ".cache")
        env = {**base_env(), **private, "XDG_CACHE_HOME": cache, "UV_CACHE_DIR": f"{cache}/uv",
               "PIP_CACHE_DIR": f"{cache}/pip"}
        proc = await asyncio.create_subprocess_exec(
            *_PREPARE, str(apkg), "--into", str(into), "--sha256", final.name,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            cwd=private["HOME"],
            start_new_session=True,  # its installer children share its group: one killpg stops all
            preexec_fn=die_with(os.getpid(), confined.sandbox.to_json()),
        )
        tail: list[str] = []
        said = lambda n: " | ".join(tail[-n:])  # noqa: E731 - the last lines, for one error line
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(self._timeout):
                async for raw in proc.stdout:
                    # The staging folder is renamed into place: name where the package will be.
                    line = raw.decode(errors="replace").strip().replace(str(into), str(final))
                    if line:
                        tail = [*tail[-9:], line]
                        progress(line)
                await proc.wait()
        except TimeoutError:
            raise PrepareFailed(
                f"preparation stopped after {self._timeout:g} s (PAR_PREPARE_TIMEOUT): {said(3)}"
            ) from None
        finally:  # cancelled (undeploy, shutdown) or out of time: do not leave the children running
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        if confined.oom_killed():
            raise PrepareFailed(f"preparation ran out of memory (PAR_PREPARE_MEMORY_LIMIT): {said(3)}")
        if proc.returncode != 0:
            raise PrepareFailed(f"par runtime prepare exited with {proc.returncode}: {said(5)}")


async def _download(url: str, into: Path) -> None:
    async with httpx.AsyncClient(timeout=60.0) as client, client.stream("GET", url) as response:
        response.raise_for_status()
        with into.open("wb") as fh:
            async for chunk in response.aiter_bytes():
                fh.write(chunk)
