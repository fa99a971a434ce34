"""`par up` keeps what a Trigger could not deliver; `par events dlq` and the registry API find it, and
it is sent again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.integration.eventing.conftest import Recorder, ThreadServer, ce_headers
from tests.support.platform import ParUp, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PAR = str(Path(sys.executable).parent / "par")


def test_a_failed_delivery_is_kept_and_par_events_dlq_redrives_it(tmp_path: Path) -> None:
    """Before: a Trigger made through the registry had no dead-letter sink; the event was dropped."""
    broken = {"yes": True}
    sink = Recorder(respond=lambda r, n: (500, {}, b"boom") if broken["yes"] else (200, {}, b""))
    server = ThreadServer(sink.app()).start()
    platform = ParUp(tmp_path / "data").start()
    env = {**os.environ, "PAR_DATA_DIR": str(platform.data_dir)}

    def dlq(*args: str) -> subprocess.CompletedProcess[str]:
        command = [PAR, "events", "dlq", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    try:
        with platform.registry() as client:
            response = client.post("/v1/namespaces/default/triggers", json={
                "name": "fragile", "broker": "default", "filters": {"type": "dlq.test"},
                "sink_uri": server.url + "/"})
            assert response.status_code == 201, response.text
        ingress = f"{platform.info['eventing_url']}/default/default"
        event = ce_headers("dl-1", "dlq.test")
        assert httpx.post(ingress, content=b'{"n": 7}', headers=event).status_code == 202

        def listed() -> list[dict]:
            result = dlq("list", "-o", "json", "--trigger", "fragile")
            assert result.returncode == 0, result.stderr
            return json.loads(result.stdout)

        (item,) = wait_until(listed, 30, "no dead letter listed")
        assert (item["event_id"], item["code"], item["destination"]) == ("dl-1", 500, server.url + "/")
        shown = json.loads(dlq("show", item["id"]).stdout)
        assert shown["response_body"] == "boom" and shown["data"] == '{"n": 7}'
        assert 'par_eventing_dead_letters{namespace="default",trigger="fragile"} 1.0' in httpx.get(
            platform.info["eventing_url"] + "/metrics").text

        with platform.registry() as client:  # the same on the registry API, one namespace at a time
            listed_there = client.get("/v1/namespaces/default/dead-letters", params={"trigger": "fragile"})
            assert [i["id"] for i in listed_there.json()["items"]] == [item["id"]]
            assert client.get("/v1/namespaces/other/dead-letters").json()["items"] == []
            elsewhere = client.get(f"/v1/namespaces/other/dead-letters/{item['id']}")
            assert elsewhere.status_code == 404 and elsewhere.json()["code"] == "dead_letter_not_found"
            shown_there = client.get(f"/v1/namespaces/default/dead-letters/{item['id']}").json()
            assert shown_there["event_id"] == "dl-1"

        broken["yes"] = False
        redriven = dlq("redrive", item["id"])
        assert redriven.returncode == 0 and "1 delivered, 0 failed" in redriven.stdout, redriven.stdout
        assert sink.ids()[-1] == "dl-1" and listed() == []
    finally:
        platform.stop()
        platform.kill()
        server.stop()
