"""Source distributions whose build code is the test's, served on loopback as an index would.

The build backend is in the tree (`backend-path`), so an installer builds it with nothing fetched.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import io
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path


def build_sdist(folder: Path, name: str, backend: str) -> Path:
    """`{name}-0.1.tar.gz` in `folder`, whose `build_wheel` is `backend`'s (Python source)."""
    module = name.replace("-", "_")
    files = {
        "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
                          f'[project]\nname = "{name}"\nversion = "0.1"\n',
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n",
        "backend.py": "def get_requires_for_build_wheel(config_settings=None):\n    return []\n\n" + backend,
    }
    sdist = folder / f"{module}-0.1.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        for file, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{module}-0.1/{file}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return sdist


@contextlib.contextmanager
def serve_folder(folder: Path) -> Iterator[int]:
    """Serve `folder` over HTTP on a free loopback port; yields the port."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
