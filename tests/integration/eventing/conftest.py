"""Real servers for eventing tests: the eventing app and recording subscribers, uvicorn on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventing.app import create_app
from eventing.offsets import GroupOffsets
from eventing.settings import EventingSettings
from tests.support.kafka import KINDS
from tests.support.net import free_port, wait_http

API = "/apis/eventing.knative.dev/v1/namespaces"


class ThreadServer:
    """A uvicorn server in a daemon thread; `stop()` lets its lifespan shut down cleanly."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on {self.port} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@dataclass
class Received:
    at: float
    headers: dict[str, str]
    body: bytes

    @property
    def id(self) -> str:
        return self.headers.get("ce-id", "")


@dataclass
class Recorder:
    """A subscriber that records every POST; `respond(received, attempt) -> (status, headers, body)`."""

    respond: Callable[[Received, int], tuple[int, dict[str, str], bytes]] = lambda r, n: (200, {}, b"")
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    def app(self) -> Starlette:
        async def handle(request: Request) -> Response:
            got = Received(time.monotonic(), dict(request.headers), await request.body())
            self.received.append(got)
            attempt = sum(1 for r in self.received if r.id == got.id)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                if self.delay:
                    await asyncio.sleep(self.delay)
                status, headers, body = self.respond(got, attempt)
            finally:
                self.in_flight -= 1
            return Response(body, status_code=status, headers=headers)

        return Starlette(routes=[Route("/", handle, methods=["POST"])])

    def ids(self) -> list[str]:
        return [r.id for r in self.received]

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"subscriber got {len(self.received)} of {count} requests")
            time.sleep(0.02)
        return self.received


@dataclass
class Subscriber:
    recorder: Recorder
    server: ThreadServer

    @property
    def url(self) -> str:
        return self.server.url + "/"


@pytest.fixture
def subscriber() -> Iterator[Callable[..., Subscriber]]:
    started: list[ThreadServer] = []

    def make(**kwargs: Any) -> Subscriber:
        recorder = Recorder(**kwargs)
        server = ThreadServer(recorder.app()).start()
        started.append(server)
        return Subscriber(recorder, server)

    yield make
    for server in started:
        server.stop()


def broker(name: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
            "metadata": {"name": name, "namespace": namespace,
                         "annotations": {"eventing.knative.dev/broker.class": "Kafka"}},
            "spec": spec}


def trigger(name: str, broker_name: str, uri: str, namespace: str = "default",
            annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
            "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
            "spec": {"broker": broker_name, "subscriber": {"uri": uri}, **spec}}


def topic_records(bootstrap: str, topic: str) -> list:
    """Every record on `topic` (read without a consumer group)."""

    async def read() -> list:
        # the topic's partitions from a metadata request naming it (a bootstrap metadata call need
        # not list every topic: Kafka's does not, Tansu's does)
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            (described,) = await admin.describe_topics([topic])
        finally:
            await admin.close()
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            parts = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            ends = await consumer.end_offsets(parts)
            out = []
            while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    out.extend(records)
            return out
        finally:
            await consumer.stop()

    return asyncio.run(read())


def _with_offsets(bootstrap: str, call: Callable[[GroupOffsets], Any]) -> Any:
    async def run() -> Any:
        store = GroupOffsets({"bootstrap_servers": bootstrap})
        await store.start()
        try:
            return await call(store)
        finally:
            await store.close()

    return asyncio.run(run())


def group_offsets(bootstrap: str, group: str, topic: str, partitions: int = 10) -> dict[int, int]:
    """The group's committed offset per partition of `topic` (read as a simple consumer)."""
    return _with_offsets(bootstrap, lambda store: store.committed(group, topic, list(range(partitions))))


def simple_commit(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Commit to `group` as a simple consumer (the broker refuses it while the group has members)."""
    _with_offsets(bootstrap, lambda store: store.commit(group, topic, offsets))


@contextlib.contextmanager
def group_member(bootstrap: str, topic: str, group: str) -> Iterator[None]:
    """A consumer that joined `group` (subscribed to `topic`, created if missing) until the block ends."""
    joined, leave = threading.Event(), threading.Event()

    async def member() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics([NewTopic(topic, 10, 1)])
        await admin.close()
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                                    session_timeout_ms=10000, heartbeat_interval_ms=1000)
        await consumer.start()
        try:
            while not consumer.assignment():
                await consumer.getmany(timeout_ms=100)
            joined.set()
            while not leave.is_set():
                await consumer.getmany(timeout_ms=100)
        finally:
            await consumer.stop()

    thread = threading.Thread(target=asyncio.run, args=(member(),), daemon=True)
    thread.start()
    assert joined.wait(30), f"could not join {group}"
    try:
        yield
    finally:
        leave.set()
        thread.join(30)


def ce_headers(event_id: str, type_: str = "demo.hello", **extra: str) -> dict[str, str]:
    return {"ce-specversion": "1.0", "ce-id": event_id, "ce-type": type_, "ce-source": "/tests",
            "content-type": "application/json", **{f"ce-{k}": v for k, v in extra.items()}}


@dataclass
class Eventing:
    server: ThreadServer
    client: httpx.Client

    @property
    def url(self) -> str:
        return self.server.url

    def post(self, broker_name: str, event_id: str, data: bytes = b'{"n":1}', namespace: str = "default",
             **headers: str) -> httpx.Response:
        path = f"/{namespace}/{broker_name}"
        return self.client.post(path, content=data, headers=ce_headers(event_id, **headers))




@pytest.fixture
def eventing_on() -> Iterator[Callable[..., Eventing]]:
    """Factory: an eventing server (ingress + dispatcher by default) on the Kafka at `bootstrap`."""
    started: list[Eventing] = []

    def make(bootstrap: str, kind: str, objects: list[dict[str, Any]] | None = None, *, ingress: bool = True,
             dispatcher: bool = True, **env: Any) -> Eventing:
        port = free_port()
        env.setdefault("PAR_EVENTING_INSECURE_NO_AUTH", not env.get("PAR_EVENTING_ADMIN_TOKEN"))
        settings = EventingSettings(PORT=port, **env)
        app = create_app(settings, bootstrap, objects=objects, ingress_enabled=ingress,
                         dispatcher_enabled=dispatcher)
        server = ThreadServer(app, port).start()
        wait_http(server.url + "/readyz")
        running = Eventing(server, httpx.Client(base_url=server.url, timeout=30))
        started.append(running)
        return running

    yield make
    for running in started:
        running.client.close()
        running.server.stop()


@pytest.fixture
def eventing(
    eventing_on: Callable[..., Eventing], kafka_bootstrap: str, kafka_kind: str
) -> Callable[..., Eventing]:
    """Factory: an eventing server on the session's Kafka (each test runs on Tansu and on Kafka)."""
    return functools.partial(eventing_on, kafka_bootstrap, kafka_kind)


@pytest.fixture(params=KINDS)
def own_kafka(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """(kind, broker): a private broker of each kind, for tests that freeze, stop or restart it."""
    if request.param == "kafka":
        yield "kafka", request.getfixturevalue("real_kafka")
    else:
        yield "tansu", request.getfixturevalue("embedded_kafka")
