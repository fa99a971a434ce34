"""How client commands find a running `par up`: `<data dir>/platform.json` and `admin.key`.

`par up` writes the file when every part is serving and removes it when it stops. Client
commands (`par deploy`, `par agents`, `par invoke`, ...) call `locate()`; `PAR_REGISTRY_URL`,
`PAR_API_KEY` and `PAR_GATEWAY_URL` override what the file says, so the same commands work
against a platform elsewhere. A `par up --data-dir DIR` also leaves `~/.par/current` naming DIR,
so that a client command with no `--data-dir`/`PAR_DATA_DIR` finds the platform the user just
started (`par up --data-dir /tmp/par` then `par deploy x.apkg`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

PLATFORM_FILE = "platform.json"
ADMIN_KEY_FILE = "admin.key"
CURRENT_FILE = "current"  # in the default data folder: the data folder of the running `par up`


@dataclass(frozen=True)
class PlatformInfo:
    """The URLs of a running platform (written by `par up`)."""

    gateway_url: str
    registry_url: str
    eventing_url: str
    local_gateway_url: str  # serving's keyless loopback way in (event deliveries, /status)
    domain: str
    pid: int


@dataclass(frozen=True)
class Endpoint:
    """Where a client command sends its requests and with which key."""

    registry_url: str | None
    api_key: str | None
    gateway_url: str | None
    domain: str | None


def default_data_dir() -> Path:
    return Path.home() / ".par"


def data_dir(explicit: Path | str | None = None) -> Path:
    """`--data-dir`, else `PAR_DATA_DIR`, else `~/.par`."""
    chosen = explicit or os.environ.get("PAR_DATA_DIR") or default_data_dir()
    return Path(chosen).expanduser()


def write_platform(directory: Path, info: PlatformInfo) -> None:
    path = directory / PLATFORM_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(info), indent=2) + "\n")
    tmp.replace(path)
    if directory.resolve() != default_data_dir().resolve():
        default_data_dir().mkdir(parents=True, exist_ok=True)
        (default_data_dir() / CURRENT_FILE).write_text(f"{directory.resolve()}\n")


def read_platform(directory: Path) -> PlatformInfo | None:
    """The running platform's URLs, or None when none runs on this data folder (no file, or its
    process is gone)."""
    try:
        info = PlatformInfo(**json.loads((directory / PLATFORM_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return info


def remove_platform(directory: Path) -> None:
    (directory / PLATFORM_FILE).unlink(missing_ok=True)
    if _current() == directory.resolve():
        (default_data_dir() / CURRENT_FILE).unlink(missing_ok=True)


def _current() -> Path | None:
    try:
        return Path((default_data_dir() / CURRENT_FILE).read_text().strip())
    except OSError:
        return None


def read_admin_key(directory: Path) -> str | None:
    try:
        return (directory / ADMIN_KEY_FILE).read_text().strip() or None
    except OSError:
        return None


def find(explicit_dir: Path | str | None = None) -> tuple[Path, PlatformInfo | None]:
    """The data folder and the platform running on it: `--data-dir`/`PAR_DATA_DIR`, else the
    one the last `par up --data-dir` named in `~/.par/current`, else `~/.par`."""
    directory = data_dir(explicit_dir)
    info = read_platform(directory)
    if info is None and "PAR_DATA_DIR" not in os.environ and directory == default_data_dir():
        current = _current()
        info = read_platform(current) if current else None
        directory = current if info and current else directory
    return directory, info


def locate(explicit_dir: Path | str | None = None) -> Endpoint:
    """Registry URL, API key and gateway URL for client commands: environment first, then the
    running platform on the data folder."""
    directory, info = find(explicit_dir)
    return Endpoint(
        registry_url=os.environ.get("PAR_REGISTRY_URL") or (info.registry_url if info else None),
        api_key=os.environ.get("PAR_API_KEY") or read_admin_key(directory),
        gateway_url=os.environ.get("PAR_GATEWAY_URL") or (info.gateway_url if info else None),
        domain=info.domain if info else None,
    )
