"""`par logs` on Knative: the Kubernetes pod log API (`GET /api/v1/namespaces/{ns}/pods/{pod}/log`,
what `kubectl logs` reads) for the pods of the agent's Service (label `serving.knative.dev/service`),
container: the agent's (PAR's manifests name it `runtime`; Knative's default is `user-container`;
never `queue-proxy`). Each line is asked with `timestamps=true`, so it carries the kubelet's time;
the pod's name is the instance, its `par.pixell.ai/version` label the version.

Following (`follow=true`) streams every running pod's log on its own thread, and lists the
Service's pods every `POD_POLL_SECONDS`: a pod started from zero joins the stream, a pod scaled
away ends its stream, and the command goes on (as `kubectl logs -f -l ...` does not).
The registry's ClusterRole (knative/registry/rbac.yaml) needs `get`/`list` on pods and `get` on
pods/log, nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from registry.backends.errors import BackendError
from registry.spec import LogRequest

SERVICE_LABEL = "serving.knative.dev/service"
VERSION_LABEL = "par.pixell.ai/version"
SIDECAR = "queue-proxy"
POD_POLL_SECONDS = 2.0
_TIMEOUT = (5.0, 30.0)


def agent_container(pod: Any) -> str | None:
    """The agent's container of a Knative pod (not Knative's queue-proxy)."""
    spec = pod.spec
    for container in (spec.containers if spec is not None else None) or []:
        if container.name != SIDECAR:
            return str(container.name)
    return None


def parse_line(raw: str, pod: Any, agent: str) -> dict[str, Any]:
    """`2026-12-06T06:01:02.123456789Z text` (timestamps=true) -> a `par logs` record."""
    stamp, _, text = raw.partition(" ")
    if stamp.endswith("Z") and "." in stamp:  # nanoseconds -> microseconds, as on one machine
        head, _, fraction = stamp[:-1].partition(".")
        stamp = f"{head}.{fraction[:6].ljust(6, '0')}Z"
    labels = (pod.metadata.labels if pod.metadata is not None else None) or {}
    return {
        "time": stamp,
        "agent": agent,
        "version": labels.get(VERSION_LABEL),
        "instance": pod.metadata.name if pod.metadata is not None else None,
        "line": text.rstrip("\r"),
    }


class PodLogs:
    """Reads an agent's pod logs through `core` (a CoreV1Api without hidden retries)."""

    def __init__(self, core: k8s.CoreV1Api, call: Callable[..., Any]) -> None:
        self.core = core
        self._call = call  # KnativeBackend._call: API errors -> BackendError

    async def _pods(self, namespace: str, agent: str, request: LogRequest) -> list[Any]:
        selector = f"{SERVICE_LABEL}={agent}"
        if request.version is not None:
            selector += f",{VERSION_LABEL}={request.version}"
        found = await self._call(
            self.core.list_namespaced_pod, namespace, label_selector=selector, _request_timeout=_TIMEOUT
        )
        pods = list(found.items or [])
        if request.instance is not None:
            pods = [p for p in pods if p.metadata is not None and p.metadata.name == request.instance]
        return pods

    def _log_args(self, pod: Any, request: LogRequest, follow: bool) -> dict[str, Any]:
        args: dict[str, Any] = {"container": agent_container(pod), "timestamps": True}
        if request.since_seconds is not None:
            args["since_seconds"] = max(1, int(request.since_seconds))
        if request.tail is not None:
            args["tail_lines"] = request.tail
        if follow:
            args["follow"] = True
            args["_preload_content"] = False  # streamed; no read timeout: a quiet agent is no failure
        else:
            args["_request_timeout"] = _TIMEOUT
        return args

    async def open(self, namespace: str, agent: str, request: LogRequest) -> AsyncIterator[dict[str, Any]]:
        pods = await self._pods(namespace, agent, request)  # a refusal or outage: an HTTP answer now
        records: list[dict[str, Any]] = []
        for pod in pods:
            try:
                text = await asyncio.to_thread(
                    self.core.read_namespaced_pod_log, pod.metadata.name, namespace,
                    **self._log_args(pod, request, follow=False),
                )
            except ApiException as exc:
                if exc.status in (400, 404):  # not started yet, or gone: no log to read
                    continue
                why = f"Kubernetes API refused the log of pod {pod.metadata.name}: {exc.status} {exc.reason}"
                raise BackendError(why) from exc
            except Exception as exc:
                raise BackendError(f"Kubernetes API unreachable: {exc}") from exc
            records += (parse_line(line, pod, agent) for line in str(text or "").splitlines())
        records.sort(key=lambda r: str(r["time"]))
        if request.tail is not None:
            records = records[-request.tail:] if request.tail else []
        if not request.follow:
            return _items(records)
        return self._follow(namespace, agent, request, pods)

    async def _follow(
        self, namespace: str, agent: str, request: LogRequest, first: list[Any]
    ) -> AsyncIterator[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        streams: dict[str, _Stream] = {}

        def start(pod: Any, fresh: bool) -> None:
            """`fresh`: a pod that came after the command started: all of its log."""
            asked = LogRequest(follow=True) if fresh else request
            args = self._log_args(pod, asked, follow=True)
            stream = streams[pod.metadata.name] = _Stream(self.core, namespace, pod, agent, args, queue, loop)
            stream.fresh = fresh
            stream.start()

        try:
            for pod in first:
                start(pod, fresh=False)
            while True:
                try:
                    record = await asyncio.wait_for(queue.get(), POD_POLL_SECONDS)
                except TimeoutError:
                    pass
                else:
                    yield record
                    continue
                with contextlib.suppress(BackendError):  # the API server away: try again next time
                    for pod in await self._pods(namespace, agent, request):
                        current = streams.get(pod.metadata.name)
                        if current is None:
                            start(pod, fresh=True)
                        elif current.ended and not current.read_any:  # it was not running yet
                            start(pod, fresh=current.fresh)
        finally:
            for stream in streams.values():
                stream.stop()


class _Stream:
    """One pod's followed log on a thread, its records handed to the event loop."""

    def __init__(
        self, core: k8s.CoreV1Api, namespace: str, pod: Any, agent: str, args: dict[str, Any],
        queue: asyncio.Queue[dict[str, Any]], loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.core, self.namespace, self.pod, self.agent, self.args = core, namespace, pod, agent, args
        self.queue, self.loop = queue, loop
        self.ended = self.read_any = self.fresh = False
        self._response: Any = None
        self._stopped = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, name=f"pod-log-{self.pod.metadata.name}", daemon=True).start()

    def _run(self) -> None:
        try:
            name = self.pod.metadata.name
            self._response = self.core.read_namespaced_pod_log(name, self.namespace, **self.args)
            for line in iter_resp_lines(self._response):  # as the bytes arrive, not by the 4 KiB
                if self._stopped.is_set():
                    return
                self.read_any = True
                record = parse_line(line, self.pod, self.agent)
                self.loop.call_soon_threadsafe(self.queue.put_nowait, record)
        except Exception:  # not started yet (400), gone (404), the connection cut: the poll decides
            return
        finally:
            self.ended = True

    def stop(self) -> None:
        """Never blocks the caller (the event loop): closing a response another thread is reading
        waits for that read, so the close happens on a thread of its own."""
        self._stopped.set()
        if self._response is not None:
            threading.Thread(target=self._close, args=(self._response,), daemon=True).start()

    @staticmethod
    def _close(response: Any) -> None:
        with contextlib.suppress(Exception):
            response.release_conn()
            response.close()


async def _items(records: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for record in records:
        yield record
