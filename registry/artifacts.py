"""Content-addressed package store on local disk: `<root>/<sha[:2]>/<sha>.apkg`.

Uploads are streamed to a temporary file inside the store (same filesystem, so the final step is
an atomic rename), hashed on the way, and bounded in size.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from starlette.datastructures import UploadFile

from registry.problems import Problem

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1024 * 1024


class ArtifactStore:
    def __init__(self, root: Path, base_url: str = "") -> None:
        self.root = root
        self.base_url = base_url  # where runtimes download from: `{base_url}/v1/artifacts/{sha256}`
        self.incoming = root / ".incoming"
        self.incoming.mkdir(parents=True, exist_ok=True)

    def url(self, sha256: str) -> str:
        return f"{self.base_url}/v1/artifacts/{sha256}"

    def path(self, sha256: str) -> Path:
        if not SHA256_RE.match(sha256):
            raise Problem(
                404, "Not found", "artifacts are named by a lowercase sha256", code="artifact_not_found"
            )
        return self.root / sha256[:2] / f"{sha256}.apkg"

    async def receive(self, upload: UploadFile, max_bytes: int) -> tuple[Path, str, int]:
        """Stream an upload to a temporary file; return (path, sha256, size). Caller removes it."""
        digest, size = hashlib.sha256(), 0
        fd, name = tempfile.mkstemp(dir=self.incoming, suffix=".apkg")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := await upload.read(_CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise Problem(
                            413, "Package too large", f"the limit is {max_bytes} bytes",
                            code="package_too_large",
                        )
                    digest.update(chunk)
                    out.write(chunk)
        except BaseException:
            os.unlink(name)
            raise
        return Path(name), digest.hexdigest(), size

    def adopt(self, temp: Path, sha256: str) -> bool:
        """Move a received file into place; False (and the temp file removed) if already stored."""
        final = self.path(sha256)
        if final.exists():
            temp.unlink(missing_ok=True)
            return False
        final.parent.mkdir(exist_ok=True)
        os.replace(temp, final)
        return True

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)
