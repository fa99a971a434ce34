"""Package sources: PACKAGE_URL from a real HTTP server (caps, retries), prepared folders, the cache."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.integration.runtime.conftest import run_par, start
from tests.support.net import free_port

pytestmark = pytest.mark.integration


class PackageServer:
    """A loopback file server: `/pkg.apkg` serves the package, `/flaky.apkg` fails twice with 503."""

    def __init__(self, apkg: Path) -> None:
        self.body = apkg.read_bytes()
        self.hits: Counter[str] = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] += 1
                if self.path == "/flaky.apkg" and server.hits[self.path] <= 2:
                    self.send_error(503)
                elif self.path in ("/pkg.apkg", "/flaky.apkg"):
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(server.body)))
                    self.end_headers()
                    self.wfile.write(server.body)
                else:
                    self.send_error(404)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def package_server(demo_apkg_kit: Path) -> Iterator[PackageServer]:
    server = PackageServer(demo_apkg_kit)
    yield server
    server.httpd.shutdown()


def test_package_url_is_downloaded_and_served(package_server: PackageServer, tmp_path: Path) -> None:
    sha = hashlib.sha256(package_server.body).hexdigest()
    server = start([], tmp_path, PACKAGE_URL=f"{package_server.base}/pkg.apkg", PACKAGE_SHA256=sha)
    try:
        assert httpx.post(server.url("/invoke"), json={"x": 1}).json()["received"] == {"x": 1}
    finally:
        server.stop()


def test_package_url_retries_server_errors(package_server: PackageServer, tmp_path: Path) -> None:
    server = start([], tmp_path, PACKAGE_URL=f"{package_server.base}/flaky.apkg", PAR_PACKAGE_URL_RETRIES="3")
    try:
        assert package_server.hits["/flaky.apkg"] == 3
        assert any("attempt 3/4" in line["msg"] for line in server.log_lines())
    finally:
        server.stop()


def _serve_expecting_failure(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run_par(["runtime", "serve", "--port", str(free_port())], tmp_path / "work", 60, **env)


def test_package_url_size_cap_and_client_errors(package_server: PackageServer, tmp_path: Path) -> None:
    capped = _serve_expecting_failure(
        tmp_path, PACKAGE_URL=f"{package_server.base}/pkg.apkg", PAR_APKG_MAX_BYTES="1000"
    )
    assert capped.returncode == 2 and "(too_large)" in capped.stderr
    missing = _serve_expecting_failure(tmp_path, PACKAGE_URL=f"{package_server.base}/nope.apkg")
    assert missing.returncode == 2 and "(download_failed)" in missing.stderr and "HTTP 404" in missing.stderr
    assert package_server.hits["/nope.apkg"] == 1  # a 404 is not retried
    dead = _serve_expecting_failure(
        tmp_path, PACKAGE_URL=f"http://127.0.0.1:{free_port()}/x.apkg", PAR_PACKAGE_URL_RETRIES="1"
    )
    assert dead.returncode == 2 and "gave up after 2 attempts" in dead.stderr


def test_no_package_at_all_is_a_clear_error(tmp_path: Path) -> None:
    result = _serve_expecting_failure(tmp_path)
    assert result.returncode == 2 and "AGENT_PACKAGE_PATH or PACKAGE_URL" in result.stderr


def test_prepare_then_serve_the_prepared_folder(demo_apkg_kit: Path, tmp_path: Path) -> None:
    into = tmp_path / "prepared"
    prepare_cli = ["runtime", "prepare", str(demo_apkg_kit), "--into", str(into)]
    first = run_par(prepare_cli, tmp_path / "work")
    assert first.returncode == 0, first.stderr
    assert "prepared demo-agent 0.1.0" in first.stderr
    again = run_par(prepare_cli, tmp_path / "work")
    assert "already prepared" in again.stderr
    server = start([str(into)], tmp_path)
    try:
        assert httpx.get(server.url("/api/hello")).json() == {"message": "Hello from REST"}
    finally:
        server.stop()
    wrong = _serve_expecting_failure(tmp_path, AGENT_PACKAGE_PATH=str(into), PACKAGE_SHA256="0" * 64)
    assert wrong.returncode == 2 and "(sha256_mismatch)" in wrong.stderr


def test_a_served_apkg_is_prepared_once_and_reused(demo_apkg_sdk: Path, tmp_path: Path) -> None:
    for expected in ("checking and extracting", "already prepared"):
        server = start([str(demo_apkg_sdk)], tmp_path)
        server.stop()
        assert any(expected in line["msg"] for line in server.log_lines()), expected


def test_an_agent_project_folder_is_served_in_place_with_an_async_handler(tmp_path: Path) -> None:
    project = tmp_path / "demo-agent"
    shutil.copytree(Path(__file__).resolve().parents[3] / "examples" / "demo-agent", project)
    (project / "src" / "main.py").write_text(
        "import asyncio\n\n\nasync def handler(context):\n"
        "    await asyncio.sleep(0)\n    return {'async': True, 'received': context}\n"
    )
    server = start([str(project)], tmp_path)
    try:
        assert httpx.post(server.url("/invoke"), json={"y": 2}).json() == {
            "async": True,
            "received": {"y": 2},
        }
        assert httpx.get(server.url("/api/hello")).json() == {"message": "Hello from REST"}
    finally:
        server.stop()
