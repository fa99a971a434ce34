"""Instance output on one machine, as the kubelet and containerd keep a container's: each
instance's stdout and stderr go to a pipe the platform drains at once (a thread, not the event
loop, so a busy platform never fills the pipe and an agent never waits on it long), each line is
stamped with the time it arrived, its instance and version, and appended to its revision's file
`<data dir>/logs/{namespace}.{agent}.{version}.log`, rotated by size (`PAR_LOG_MAX_BYTES`,
keeping `PAR_LOG_MAX_FILES` rotated files `.log.1` (newest) ... `.log.N`).

A file holds JSON lines `{"time", "instance", "version", "line"}`. The pipe is a FIFO under
`<data dir>/logs/.pipes/` so the runtime template (`forkserver.py`) can open it by name in the
instance it forks, before the instance enters its sandbox.

`read_logs` and `follow_logs` read them back for `par logs` (through the registry's local backend).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import secrets
import selectors
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MAX_LINE = 16 * 1024  # a longer line is written in pieces (containerd's partial lines)
POLL_SECONDS = 0.2


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def instance_id(agent: str) -> str:
    """A pod-name-like id: the agent and 6 random hex digits."""
    return f"{agent}-{secrets.token_hex(3)}"


def revision_log(logs: Path, namespace: str, agent: str, version: str) -> Path:
    return logs / f"{namespace}.{agent}.{version}.log"


class RotatingFile:
    """One revision's log file, rotated when a write would take it over `max_bytes`."""

    def __init__(self, path: Path, max_bytes: int, max_files: int) -> None:
        self.path, self.max_bytes, self.max_files = path, max_bytes, max_files
        self.users = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("ab")

    def write(self, data: bytes) -> None:
        if self._fh.tell() and self._fh.tell() + len(data) > self.max_bytes:
            self._rotate()
        self._fh.write(data)

    def flush(self) -> None:
        self._fh.flush()

    def _rotate(self) -> None:
        self._fh.close()
        if self.max_files <= 0:
            self.path.unlink(missing_ok=True)
        else:
            Path(f"{self.path}.{self.max_files}").unlink(missing_ok=True)
            for n in range(self.max_files - 1, 0, -1):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(f"{self.path}.{n}", f"{self.path}.{n + 1}")
            os.replace(self.path, f"{self.path}.1")
        self._fh = self.path.open("ab")

    def close(self) -> None:
        self._fh.close()


@dataclass(eq=False)
class LogChannel:
    """One instance's output: the FIFO it writes to and the lines it wrote last."""

    instance: str
    version: str
    pipe: Path
    file: RotatingFile
    read_fd: int
    keep_fd: int  # our own write end: no EOF before the instance has opened the FIFO
    wake_fd: int  # the collector's wake-up pipe
    recent: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=20))
    pending: bytes = b""
    drained: threading.Event = field(default_factory=threading.Event)

    def close_writer(self) -> None:
        """The instance has exited: drop our write end so the collector reads to EOF (idempotent)."""
        if self.keep_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.keep_fd)
            self.keep_fd = -1
            self.pipe.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                os.write(self.wake_fd, b"x")

    def output(self, exited: bool = False, within: float = 0.5) -> str:
        """The last lines; once the instance has exited, after what it wrote before was read."""
        if exited:
            self.close_writer()
            self.drained.wait(within)
        return " | ".join(line for line in list(self.recent)[-5:] if line.strip())


class LogCollector:
    """Drains every instance's FIFO on one thread and writes the stamped lines."""

    def __init__(self, logs: Path, max_bytes: int, max_files: int) -> None:
        self.logs, self.max_bytes, self.max_files = logs, max_bytes, max_files
        self._pipes = logs / ".pipes"
        self._selector = selectors.DefaultSelector()
        self._files: dict[Path, RotatingFile] = {}
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread: threading.Thread | None = None
        self._closed = False

    def open(self, namespace: str, agent: str, version: str) -> LogChannel:
        """A FIFO for a new instance of `version`, read from now on."""
        self._pipes.mkdir(parents=True, exist_ok=True)
        ident = instance_id(agent)
        pipe = self._pipes / f"{namespace}.{ident}"
        with contextlib.suppress(FileNotFoundError):
            pipe.unlink()
        os.mkfifo(pipe, 0o600)
        read_fd = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)
        keep_fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
        path = revision_log(self.logs, namespace, agent, version)
        with self._lock:
            file = self._files.get(path)
            if file is None:
                file = self._files[path] = RotatingFile(path, self.max_bytes, self.max_files)
            file.users += 1
            channel = LogChannel(ident, version, pipe, file, read_fd, keep_fd, self._wake_w)
            self._selector.register(read_fd, selectors.EVENT_READ, channel)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="par-instance-logs", daemon=True)
                self._thread.start()
        os.write(self._wake_w, b"x")
        return channel

    @staticmethod
    def release(channel: LogChannel) -> None:
        """The instance has exited: read what is left, then forget the channel at EOF."""
        channel.close_writer()

    def _run(self) -> None:
        while not self._closed:
            for key, _ in self._selector.select():
                channel = key.data
                if channel is None:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 4096)
                    continue
                self._drain(channel)

    def _drain(self, channel: LogChannel) -> None:
        try:
            chunk = os.read(channel.read_fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if chunk:
            channel.pending += chunk
            *lines, channel.pending = channel.pending.split(b"\n")
            while len(channel.pending) > MAX_LINE:
                lines.append(channel.pending[:MAX_LINE])
                channel.pending = channel.pending[MAX_LINE:]
            self._write(channel, lines)
            return
        if channel.pending:  # EOF: the last line had no newline
            self._write(channel, [channel.pending])
            channel.pending = b""
        with self._lock:
            self._selector.unregister(channel.read_fd)
            os.close(channel.read_fd)
            channel.file.users -= 1
            if channel.file.users == 0:
                channel.file.close()
                self._files.pop(channel.file.path, None)
        channel.drained.set()

    def _write(self, channel: LogChannel, lines: list[bytes]) -> None:
        now = stamp()
        for raw in lines:
            text = raw.decode(errors="replace").rstrip("\r")
            channel.recent.append(text)
            record = {"time": now, "instance": channel.instance, "version": channel.version, "line": text}
            channel.file.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")
        channel.file.flush()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")


# -- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogQuery:
    namespace: str
    agent: str
    version: str | None = None
    instance: str | None = None
    since: datetime | None = None  # lines at or after
    tail: int | None = None  # the last N lines (before following)

    def matches(self, record: dict[str, Any]) -> bool:
        if self.version is not None and record.get("version") != self.version:
            return False
        if self.instance is not None and record.get("instance") != self.instance:
            return False
        if self.since is not None:
            when = _parse_time(record.get("time"))
            if when is None or when < self.since:
                return False
        return True


def _parse_time(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _revision_files(logs: Path, namespace: str, agent: str) -> list[Path]:
    """Every current revision file of the agent (`{ns}.{agent}.{version}.log`)."""
    prefix = f"{namespace}.{agent}."
    if not logs.is_dir():
        return []
    return sorted(p for p in logs.iterdir() if p.name.startswith(prefix) and p.name.endswith(".log"))


def _records(path: Path, start: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    """(offset after the line, record) for each whole line from `start`."""
    try:
        with path.open("rb") as fh:
            fh.seek(start)
            offset = start
            for raw in fh:
                if not raw.endswith(b"\n"):
                    return  # being written: read it next time
                offset += len(raw)
                try:
                    record = json.loads(raw)
                except ValueError:
                    continue  # not ours (a file from before this format)
                if isinstance(record, dict):
                    yield offset, record
    except FileNotFoundError:
        return


def read_logs(logs: Path, query: LogQuery) -> list[dict[str, Any]]:
    """The stored lines matching `query`, oldest first (rotated files included)."""
    found: list[dict[str, Any]] = []
    for current in _revision_files(logs, query.namespace, query.agent):
        rotated = sorted(
            (p for p in logs.glob(f"{current.name}.*") if p.suffix[1:].isdigit()),
            key=lambda p: -int(p.suffix[1:]),
        )
        for path in [*rotated, current]:
            found += (r for _, r in _records(path) if query.matches(r))
    found.sort(key=lambda r: str(r.get("time", "")))
    if query.tail is not None:
        found = found[-query.tail:] if query.tail > 0 else []
    return [{"agent": query.agent, **r} for r in found]


def _new_records(
    logs: Path, query: LogQuery, positions: dict[Path, tuple[int, int]]
) -> list[dict[str, Any]]:
    """The lines written since `positions` (current file -> (inode, offset)), which it advances."""
    batch: list[dict[str, Any]] = []
    for path in _revision_files(logs, query.namespace, query.agent):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        inode, start = positions.get(path, (st.st_ino, 0))
        if inode != st.st_ino:  # rotated: finish the old file (now .1), then the new one from 0
            old = Path(f"{path}.1")
            with contextlib.suppress(FileNotFoundError):
                if old.stat().st_ino == inode:
                    batch += (r for _, r in _records(old, start) if query.matches(r))
            inode, start = st.st_ino, 0
        end = start
        for end, record in _records(path, start):  # noqa: B007 - the last offset is kept
            if query.matches(record):
                batch.append(record)
        positions[path] = (inode, end)
    batch.sort(key=lambda r: str(r.get("time", "")))
    return [{"agent": query.agent, **r} for r in batch]


async def follow_logs(logs: Path, query: LogQuery) -> AsyncIterator[dict[str, Any]]:
    """`read_logs`, then each new line as it is written, across rotations, new instances and
    new versions, until the caller stops."""
    positions: dict[Path, tuple[int, int]] = {}

    def start() -> list[dict[str, Any]]:
        for path in _revision_files(logs, query.namespace, query.agent):
            with contextlib.suppress(FileNotFoundError):
                st = path.stat()
                positions[path] = (st.st_ino, st.st_size)
        return read_logs(logs, query)

    for record in await asyncio.to_thread(start):
        yield record
    unfiltered = LogQuery(query.namespace, query.agent, query.version, query.instance, query.since)
    while True:
        await asyncio.sleep(POLL_SECONDS)
        for record in await asyncio.to_thread(_new_records, logs, unfiltered, positions):
            yield record
