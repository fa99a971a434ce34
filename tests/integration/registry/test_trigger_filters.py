"""Triggers made through the registry take Knative's full filter forms (issue 12, 3): the API, the
CLI's kn-like flags, the stored list, the generated manifest, and delivery by the real eventing."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from registry.backends.eventing_admin import EventingAdmin
from registry.backends.recording import RecordingBackend
from registry.settings import RegistrySettings
from registry.spec import TriggerSpec
from tests.integration.registry.test_api import assert_problem
from tests.integration.registry.test_cli import par
from tests.support.net import free_port, stop_process, wait_http
from tests.support.registry import RunningRegistry, run_registry

pytestmark = pytest.mark.integration
NS = "/v1/namespaces/default"
DIALECTS = [
    {"prefix": {"type": "order."}},
    {"any": [{"suffix": {"type": ".created"}}, {"exact": {"type": "order.paid"}}]},
    {"not": {"exact": {"source": "/test"}}},
    {"cesql": "source LIKE '/shop/%' AND (NOT EXISTS tier OR tier <> 'free')"},
]


def test_the_api_stores_knatives_filter_list_and_refuses_what_does_not_compile(
    registry: RunningRegistry,
) -> None:
    with registry.client() as c:
        created = c.post(f"{NS}/triggers", json={"name": "orders", "sink_agent": "shop", "filters": DIALECTS})
        assert created.status_code == 201, created.text
        assert created.json()["filters"] == DIALECTS
        assert c.get(f"{NS}/triggers/orders").json()["filters"] == DIALECTS
        bad_sql = {"name": "bad", "sink_agent": "shop",
                   "filters": [{"prefix": {"type": "x"}}, {"cesql": "type ="}]}
        problem = assert_problem(c.post(f"{NS}/triggers", json=bad_sql), 422)
        assert problem["code"] == "invalid_trigger" and problem["field"] == "spec.filters[1].cesql"
        assert "column 7" in problem["detail"]
        for filters, field in (([{"exact": {"a": "1"}, "prefix": {"a": "1"}}], "spec.filters[0]"),
                               ([{"regex": {"type": ".*"}}], "spec.filters[0]"),
                               ([{"not": {"suffix": {"Type": "x"}}}], "spec.filters[0].not.suffix.Type")):
            problem = assert_problem(c.post(f"{NS}/triggers", json={**bad_sql, "filters": filters}), 422)
            assert problem["field"] == field
        assert [t["name"] for t in c.get(f"{NS}/triggers").json()["items"]] == ["orders"]
    applied = [spec for call, spec in registry.backend.calls if call == "apply_trigger"]  # type: ignore[attr-defined]
    assert len(applied) == 1 and isinstance(applied[0], TriggerSpec)
    assert applied[0].dialect_filters == DIALECTS and applied[0].filters == {}


class _Receiver(BaseHTTPRequestHandler):
    """A subscriber: records the `ce-id` of every event POSTed to it."""

    received: list[str]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.received.append(self.headers.get("ce-id", ""))
        self.send_response(202)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[str]]]:
    received: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Receiver", (_Receiver,), {"received": received}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", received
    server.shutdown()


@pytest.fixture
def eventing_serve(tmp_path: Path) -> Iterator[str]:
    """`par eventing serve` (ingress, dispatcher, admin API) on its own embedded broker."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAR_", "KAFKA_"))}
    log = (tmp_path / "eventing.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-c", "from cli.main import main; main()", "eventing", "serve",
                             "--port", str(port), "--insecure-no-auth"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/readyz", timeout=60)
        yield url
    finally:
        stop_process(proc)


class TriggersToEventing(RecordingBackend):
    """Deployments recorded only (no agents run here); triggers applied to the real eventing, as the
    one-machine backend applies them (`registry.backends.eventing_admin`)."""

    def __init__(self, eventing_url: str) -> None:
        super().__init__()
        self.admin = EventingAdmin(eventing_url, ready_within=30.0)

    async def apply_trigger(self, spec: TriggerSpec) -> None:
        await super().apply_trigger(spec)
        await self.admin.apply_trigger(spec)

    async def aclose(self) -> None:
        await self.admin.aclose()


def _post(ingress: str, event_id: str, type_: str, source: str) -> None:
    headers = {"ce-specversion": "1.0", "ce-id": event_id, "ce-type": type_, "ce-source": source,
               "content-type": "application/json"}
    assert httpx.post(f"{ingress}/default/default", content=b"{}", headers=headers).status_code == 202


def test_cli_filter_flags_reach_the_eventing_that_delivers_only_matching_events(
    tmp_path: Path, eventing_serve: str, receiver: tuple[str, list[str]]
) -> None:
    sink, received = receiver
    settings = RegistrySettings(data_dir=tmp_path / "reg")
    with run_registry(settings, backend=TriggersToEventing(eventing_serve)) as registry:
        bad = par(registry, "trigger", "create", "broken", "--sink", sink, "--filter-expr", "type LIKE",
                  check=False)
        assert bad.returncode == 1 and "spec.filters[0].cesql" in bad.stderr and "column" in bad.stderr
        par(registry, "trigger", "create", "orders", "--sink", sink, "--filter-prefix", "type=order.",
            "--filter-suffix", "type=.created", "--filter-expr", "source LIKE '/shop/%'")
        listed = par(registry, "trigger", "list").stdout
        assert "prefix(type=order.),suffix(type=.created),cesql(source LIKE '/shop/%')" in listed
    api = f"{eventing_serve}/apis/eventing.knative.dev/v1/namespaces/default"
    applied = httpx.get(f"{api}/triggers/orders").json()
    assert applied["spec"]["filters"] == [{"prefix": {"type": "order."}}, {"suffix": {"type": ".created"}},
                                          {"cesql": "source LIKE '/shop/%'"}]
    _post(eventing_serve, "wrong-source", "order.created", "/other/1")
    _post(eventing_serve, "wrong-type", "invoice.created", "/shop/1")
    _post(eventing_serve, "wrong-suffix", "order.paid", "/shop/1")
    _post(eventing_serve, "match", "order.created", "/shop/7")
    deadline = time.monotonic() + 20
    while not received and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # the non-matching events, posted first, had their chance
    assert received == ["match"]
