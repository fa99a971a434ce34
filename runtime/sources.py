"""Where the package comes from: a path (argument or `AGENT_PACKAGE_PATH`), a URL (`PACKAGE_URL`),
or an already prepared folder. Packages given as files are prepared on the fly into
`PAR_RUNTIME_WORK_DIR/agents/<sha256>` and reused from there on the next start."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import TYPE_CHECKING

from runtime.apkg import ApkgError, Limits, check_sha256, file_sha256
from runtime.config import RuntimeSettings
from runtime.prepare import MARKER, Prepared, Progress, load_prepared, load_project, prepare

if TYPE_CHECKING:
    import httpx


def resolve(arg: str | None, settings: RuntimeSettings, progress: Progress) -> Prepared:
    """Turn the configured source into a prepared package, honouring `PACKAGE_SHA256`."""
    location = arg or settings.agent_package_path
    limits = Limits.from_settings(settings)
    if not location and settings.package_url:
        apkg = download(settings.package_url, settings, progress)
        return _prepare_file(apkg, settings, limits, progress)
    if not location:
        raise ApkgError(
            "no_package",
            "no package given: pass PATH.apkg or a folder, or set AGENT_PACKAGE_PATH or PACKAGE_URL",
        )
    path = Path(location)
    if path.is_dir():
        if (path / MARKER).is_file():
            prepared = load_prepared(path)
            check_sha256(prepared.sha256 or "", settings.package_sha256, str(path))
            return prepared
        if (path / "agent.yaml").is_file():
            if settings.package_sha256:
                raise ApkgError(
                    "sha256_mismatch", f"{path}: PACKAGE_SHA256 is set but a plain folder has no digest"
                )
            return load_project(path)
        raise ApkgError(
            "missing_manifest", f"{path}: neither a prepared package folder nor one with agent.yaml"
        )
    if path.is_file():
        return _prepare_file(path, settings, limits, progress)
    raise ApkgError("not_found", f"{path}: no such package file or folder")


def _prepare_file(apkg: Path, settings: RuntimeSettings, limits: Limits, progress: Progress) -> Prepared:
    sha256 = file_sha256(apkg)
    check_sha256(sha256, settings.package_sha256, str(apkg))
    into = settings.work_dir / "agents" / sha256[:32]
    return prepare(apkg, into, limits=limits, progress=progress)


def download(url: str, settings: RuntimeSettings, progress: Progress) -> Path:
    """Fetch `url` with a size cap, timeouts and retries (connection errors, 5xx, 429)."""
    import httpx

    if not url.startswith(("http://", "https://")):
        raise ApkgError("bad_url", f"PACKAGE_URL {url!r} is not an http(s) URL")
    target_dir = settings.work_dir / "downloads"
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / (hashlib.sha256(url.encode()).hexdigest()[:32] + ".apkg")
    partial = target.with_suffix(".partial")
    attempts = max(1, settings.download_retries + 1)
    last = ""
    for attempt in range(1, attempts + 1):
        try:
            progress(f"downloading {url} (attempt {attempt}/{attempts})")
            with httpx.stream(
                "GET", url, timeout=settings.download_timeout, follow_redirects=True
            ) as response:
                if response.status_code >= 500 or response.status_code == 429:
                    last = f"HTTP {response.status_code}"
                elif response.status_code != 200:
                    raise ApkgError("download_failed", f"{url}: HTTP {response.status_code}")
                else:
                    _save(response, partial, settings.max_package_bytes, url)
                    partial.replace(target)
                    return target
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"
        if attempt < attempts:
            time.sleep(min(0.5 * 2 ** (attempt - 1), 5.0))
    partial.unlink(missing_ok=True)
    raise ApkgError("download_failed", f"{url}: gave up after {attempts} attempts ({last})")


def _save(response: httpx.Response, partial: Path, cap: int, url: str) -> None:
    declared = int(response.headers.get("content-length") or 0)
    if declared > cap:
        raise ApkgError("too_large", f"{url}: {declared} bytes, over the limit of {cap}")
    received = 0
    with open(partial, "wb") as out:
        for chunk in response.iter_bytes():
            received += len(chunk)
            if received > cap:
                out.close()
                partial.unlink(missing_ok=True)
                raise ApkgError("too_large", f"{url}: more than the limit of {cap} bytes")
            out.write(chunk)
