"""`par up` restarted with many stored Triggers: serving at once, and delivering."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.integration.eventing.conftest import Recorder, ThreadServer, ce_headers
from tests.support.platform import ParUp

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_restart_with_sixty_triggers_serves_within_seconds_and_delivers(tmp_path: Path) -> None:
    """Stored Triggers were applied one after another at start, each waiting for its consumer-group
    join (~2 s on the embedded broker): 60 Triggers held `par up` for two minutes."""
    sink = Recorder()
    server = ThreadServer(sink.app()).start()
    platform = ParUp(tmp_path / "data").start()
    try:
        with platform.registry() as client:
            for i in range(60):
                response = client.post("/v1/namespaces/default/triggers", json={
                    "name": f"many-{i:02d}", "broker": "default", "filters": {"type": f"many.{i}"},
                    "sink_uri": server.url + "/"})
                assert response.status_code == 201, response.text
        platform.stop()
        started = time.monotonic()
        platform.start(timeout=60)
        took = time.monotonic() - started
        ingress = f"{platform.info['eventing_url']}/default/default"
        response = httpx.post(ingress, content=b"{}", headers=ce_headers("after-restart", "many.42"))
        assert response.status_code == 202
        (got,) = sink.wait_for(1, timeout=10)
        assert got.id == "after-restart" and took < 15, took
    finally:
        platform.stop()
        platform.kill()
        server.stop()
