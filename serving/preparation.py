"""Prepare each deployed APKG once, at deploy time, with `par runtime prepare`.

Prepared folders are keyed by the package's SHA-256, so a re-deploy, a traffic change or a
second `par up` on the same data folder reuses them and scale from zero only starts a process.
The preparation runs in a child process (it may install dependencies for minutes); its output
lines are passed on as progress.
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

# `par runtime prepare`, straight from the runtime component (serving imports no CLI above it).
_PREPARE = (sys.executable, "-c", "from runtime.cli import app; app()", "prepare")
_DONE = ".par-prepared"


class PrepareFailed(RuntimeError):
    """`par runtime prepare` rejected the package or failed; the message carries its output."""


def prepared_dir(root: Path, sha256: str) -> Path:
    return root / sha256


async def prepare(
    root: Path,
    sha256: str,
    source: Path | str,
    progress: Callable[[str], None],
) -> Path:
    """Return the prepared folder for package `sha256`, preparing it from `source` (a local
    path or an artifact URL) if it is not there yet."""
    target = prepared_dir(root, sha256)
    if _is_prepared(target):
        return target
    with tempfile.TemporaryDirectory(dir=root, prefix=".prepare-") as tmp:
        apkg = Path(source) if not str(source).startswith(("http://", "https://")) else None
        if apkg is None:
            progress(f"downloading {source}")
            apkg = Path(tmp) / "package.apkg"
            await _download(str(source), apkg)
        staging = Path(tmp) / "prepared"
        progress(f"preparing {apkg.name}")
        await _run_prepare(apkg, staging, sha256, progress)
        (staging / _DONE).write_text(sha256)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return target


def _is_prepared(target: Path) -> bool:
    target.parent.mkdir(parents=True, exist_ok=True)
    return (target / _DONE).exists()


async def _download(url: str, into: Path) -> None:
    async with httpx.AsyncClient(timeout=60.0) as client, client.stream("GET", url) as response:
        response.raise_for_status()
        with into.open("wb") as fh:
            async for chunk in response.aiter_bytes():
                fh.write(chunk)


async def _run_prepare(apkg: Path, into: Path, sha256: str, progress: Callable[[str], None]) -> None:
    proc = await asyncio.create_subprocess_exec(
        *_PREPARE, str(apkg), "--into", str(into), "--sha256", sha256,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # its installer children share its group: one killpg stops all
        preexec_fn=die_with(os.getpid()),
    )
    tail: list[str] = []
    assert proc.stdout is not None
    try:
        async for raw in proc.stdout:
            line = raw.decode(errors="replace").strip()
            if line:
                tail = [*tail[-9:], line]
                progress(line)
        await proc.wait()
    except BaseException:  # cancelled (undeploy, shutdown): do not leave the child running
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        raise
    if proc.returncode != 0:
        raise PrepareFailed(f"par runtime prepare exited with {proc.returncode}: {' | '.join(tail[-5:])}")
