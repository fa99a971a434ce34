"""The build's package index (defect 8: the Dockerfile could take none): scripts/images.sh passes
UV_INDEX_URL / PIP_INDEX_URL to the Dockerfile, whose download steps ask that index and no other.
The index here is a loopback server that knows no package, so the build fails fast, having asked it.
(The CA secret is exercised by every build on a machine whose TLS is intercepted, as this one's is.)"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.integration.images.conftest import SCRIPT, Images

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(2700)]


class EmptyIndex:
    """A PEP 503 index with no projects: every page is 404; the paths asked are kept."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        index = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                index.asked.append(self.path)
                self.send_error(404)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/simple"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def empty_index() -> Iterator[EmptyIndex]:
    index = EmptyIndex()
    yield index
    index.httpd.shutdown()


@pytest.mark.parametrize("variable", ["UV_INDEX_URL", "PIP_INDEX_URL"])
def test_the_build_asks_the_index_it_is_given(images: Images, empty_index: EmptyIndex, variable: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("UV_INDEX_URL", "PIP_INDEX_URL")}
    env[variable] = empty_index.url
    before = _buildah_containers()
    result = subprocess.run(
        ["bash", str(SCRIPT), "build"], capture_output=True, text=True, timeout=900, env=env, check=False
    )
    assert result.returncode != 0, "a build against an empty index cannot succeed"
    assert any(path.startswith("/simple/") for path in empty_index.asked), (empty_index.asked, result.stderr)
    names = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert names["RUNTIME_IMAGE"] != images.runtime  # the index is an input: another tag
    # buildah 1.28 may leave a failed build's working containers behind, even with --force-rm.
    for container in _buildah_containers() - before:
        subprocess.run(["buildah", "rm", container], capture_output=True, check=False, timeout=60)


def _buildah_containers() -> set[str]:
    out = subprocess.run(["buildah", "containers", "--quiet"], capture_output=True, text=True, check=True)
    return set(out.stdout.split())
