"""Knative backend: server-side apply of the generated objects through the official `kubernetes`
client (field manager `par-registry`), delete on undeploy, and a watch of the Service's
conditions (`Ready`, `ConfigurationsReady`, `RoutesReady`) mapped to registry status and URL.
A namespace's first agent also applies its tenancy objects (`registry.knative.tenancy`: NetworkPolicy,
ResourceQuota, LimitRange) unless `PAR_TENANT_OBJECTS=false`.

The client is synchronous, so calls run in worker threads; a watch streams in a thread and
hands events to the event loop through a queue.

Following status survives what real API servers do: a watch that ends is opened again from the
last resourceVersion; `410 Gone` (that version was compacted, or the server restarted) lists
again; while the server is unreachable or refuses, the watch retries forever with capped
exponential backoff, logging when that state changes, not every attempt. `follow` keeps going
after Ready, so a later change is reported.

Drift: fields of the Service's `spec` owned by another field manager (a `kubectl edit`, another
controller) are reported in the status message, naming the manager and fields; the registry does
not re-apply by itself. The next deploy of the agent (any `par deploy`, traffic change or
rollback) applies PAR's desired state with `force`, taking those fields back.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import os
import random
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar, cast

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from registry.backends.base import DeployBackend
from registry.backends.errors import BackendError, BackendRejected, KindNotInstalled, NamespaceMissing
from registry.backends.knative_logs import PodLogs
from registry.knative import manifests, tenancy
from registry.settings import RegistrySettings
from registry.spec import Condition, DeploymentSpec, DeploymentStatus, LogRequest, Phase, TriggerSpec

T = TypeVar("T")
APPLY = "application/apply-patch+yaml"
_PLURALS = {"Service": "services", "Broker": "brokers", "Trigger": "triggers"}
_SHOWN = ("ConfigurationsReady", "RoutesReady", "Ready")
# What to install when the API server does not serve a kind the registry applies.
_INSTALL = {
    "Service": "Knative Serving",
    "Broker": "Knative Eventing and its Kafka broker (knative/eventing), or deploy with --no-broker",
    "Trigger": "Knative Eventing and its Kafka broker (knative/eventing)",
}
WATCH_SECONDS = 240  # one watch request's server-side timeout; then it is opened again from where it was
BACKOFF = (0.25, 15.0)  # first and longest wait between attempts while the API server is away
_TIMEOUT = (5.0, 30.0)  # connect, read: a hung API server fails a call instead of hanging it
_OPENED = "OPENED"  # not a Kubernetes event type: the watch request was answered 200
POD_CHECK_SECONDS = 3.0  # while a revision rolls out, its pods are looked at this often
REVISION_LABEL = "serving.knative.dev/revision"  # on every pod of a revision
log = logging.getLogger("registry.knative")


def status_from_service(obj: dict[str, Any] | None) -> DeploymentStatus:
    """Knative Service -> registry status. Ready=True is ready, Ready=False is failed (Knative
    only says False for a rollout that will not succeed as is), anything else is deploying."""
    if obj is None:
        return DeploymentStatus(phase=Phase.absent)
    meta, status = obj.get("metadata", {}), obj.get("status") or {}
    generation = meta.get("annotations", {}).get("par.pixell.ai/generation")
    conditions = tuple(
        Condition(
            type=c["type"],
            status=c.get("status", "Unknown"),
            reason=c.get("reason"),
            message=c.get("message"),
        )
        for c in status.get("conditions", [])
        if c.get("type") in _SHOWN
    )
    if status.get("observedGeneration", 0) < meta.get("generation", 0):
        conditions = ()  # Knative has not seen this spec yet: they describe the previous one
    ready = next((c for c in conditions if c.type == "Ready"), None)
    if ready is None or ready.status == "Unknown":
        phase, message = Phase.deploying, ready.message if ready else None
    elif ready.status == "True":
        phase, message = Phase.ready, None
    else:
        phase, message = Phase.failed, ": ".join(p for p in (ready.reason, ready.message) if p) or "not ready"
    drift = drifted(meta)
    if drift:
        message = f"{message}; {drift}" if message else drift
    return DeploymentStatus(
        phase=phase,
        url=status.get("url") if phase is Phase.ready else None,
        conditions=conditions,
        message=message,
        generation=int(generation) if generation and generation.isdigit() else None,
    )


def _revision(service: dict[str, Any] | None) -> str | None:
    """The revision the Service's template makes (PAR names each), else Knative's latest."""
    if service is None:
        return None
    named = ((service.get("spec") or {}).get("template") or {}).get("metadata", {}).get("name")
    return named or (service.get("status") or {}).get("latestCreatedRevisionName")


def _rolling_out(service: dict[str, Any] | None) -> bool:
    return service is not None and status_from_service(service).phase is Phase.deploying


def _with_crash(
    status: DeploymentStatus, crash: tuple[str, Condition] | None, service: dict[str, Any] | None
) -> DeploymentStatus:
    """While Knative still says Unknown, a crashing revision is failed now, with its pods' reason
    (Knative's own verdict, Ready True or False, wins once it has one; another revision's crash
    does not count)."""
    if crash is None or status.phase is not Phase.deploying or _revision(service) != crash[0]:
        return status
    crash_condition = crash[1]
    conditions = (*(c for c in status.conditions if c.type != "Ready"), crash_condition)
    message = f"{crash_condition.reason}: {crash_condition.message}"
    return status.model_copy(update={"phase": Phase.failed, "conditions": conditions, "message": message})


def drifted(meta: dict[str, Any]) -> str | None:
    """Who else owns fields of the Service's spec (status writes do not count), as a sentence."""
    others: dict[str, list[str]] = {}
    for entry in meta.get("managedFields") or []:
        spec = (entry.get("fieldsV1") or {}).get("f:spec")
        if entry.get("manager") != manifests.FIELD_MANAGER and not entry.get("subresource") and spec:
            others.setdefault(entry.get("manager") or "unknown", []).extend(_paths(spec, "spec"))
    if not others:
        return None
    owners = "; ".join(
        f"{manager} ({', '.join(sorted(set(paths))[:4])})" for manager, paths in sorted(others.items())
    )
    return f"changed outside PAR by {owners}: left as is until the next deploy re-applies it"


def _paths(fields: dict[str, Any], prefix: str) -> list[str]:
    """Field paths of a managedFields `fieldsV1` tree, stopping where list items (`k:`/`v:`) begin."""
    named = {key[2:]: sub for key, sub in fields.items() if key.startswith("f:")}
    if not named:
        return [prefix]
    return [path for name, sub in named.items() for path in _paths(sub or {}, f"{prefix}.{name}")]


class KnativeBackend(DeployBackend):
    name = "knative"

    def __init__(
        self,
        api: k8s.ApiClient,
        options: manifests.ManifestOptions | None = None,
        tenants: tenancy.TenantOptions | None = None,
        create_namespaces: bool = True,
    ) -> None:
        self.api = api
        self.create_namespaces = create_namespaces
        self.custom = k8s.CustomObjectsApi(api)
        # Each agent namespace's NetworkPolicy, ResourceQuota and LimitRange (None: not managed).
        self._tenant_options = tenants
        self._fenced: set[str] = set()  # namespaces this process has applied them to
        self._typed = {
            "NetworkPolicy": k8s.NetworkingV1Api(api).patch_namespaced_network_policy,
            "ResourceQuota": k8s.CoreV1Api(api).patch_namespaced_resource_quota,
            "LimitRange": k8s.CoreV1Api(api).patch_namespaced_limit_range,
        }
        # Watches retry on their own terms (backoff, logged once per state): no hidden urllib3
        # retries, each of which would log a warning of its own.
        watching = copy.deepcopy(api.configuration)
        watching.retries = False
        self._watching = k8s.CustomObjectsApi(k8s.ApiClient(watching))
        self._core_watching = k8s.CoreV1Api(self._watching.api_client)
        self.options = options or manifests.ManifestOptions()

    @classmethod
    def from_settings(cls, settings: RegistrySettings) -> KnativeBackend:
        """KUBECONFIG (or ~/.kube/config) when present, else the in-cluster service account."""
        try:
            api = k8s_config.new_client_from_config(config_file=os.environ.get("KUBECONFIG"))
        except (k8s_config.ConfigException, OSError, TypeError):
            configuration = k8s.Configuration()
            k8s_config.load_incluster_config(client_configuration=configuration)
            api = k8s.ApiClient(configuration)
        tenants = tenancy.options_from(settings) if settings.tenant_objects else None
        return cls(api, manifests.options_from(settings), tenants, settings.create_namespaces)

    async def _call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await asyncio.to_thread(func, *args, **kwargs)
        except ApiException as exc:
            raise _api_error(exc) from exc
        except Exception as exc:  # urllib3 connection errors and the like
            raise BackendError(f"Kubernetes API unreachable: {exc}") from exc

    async def _apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        group, version = obj["apiVersion"].split("/")
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        # The generated client types custom objects as `object`; they are decoded JSON objects.
        try:
            applied = cast(
                "dict[str, Any] | None",
                await self._call(
                    self.custom.patch_namespaced_custom_object,
                    group,
                    version,
                    namespace,
                    _PLURALS[obj["kind"]],
                    name,
                    obj,
                    field_manager=manifests.FIELD_MANAGER,
                    force=True,
                    _content_type=APPLY,
                ),
            )
        except BackendError as exc:
            if isinstance(exc.__cause__, ApiException) and _kind_missing(exc.__cause__):
                raise KindNotInstalled(obj["kind"], obj["apiVersion"], _INSTALL[obj["kind"]]) from exc
            raise
        if applied is None:
            # The generated client only decodes 200 bodies; an apply that creates answers 201.
            applied = await self._get(obj["apiVersion"], obj["kind"], namespace, name)
        return applied or {}

    async def _get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        group, version = api_version.split("/")
        try:
            found = await asyncio.to_thread(
                self.custom.get_namespaced_custom_object, group, version, namespace, _PLURALS[kind], name
            )
            return cast("dict[str, Any] | None", found)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise _api_error(exc) from exc
        except Exception as exc:
            raise BackendError(f"Kubernetes API unreachable: {exc}") from exc

    async def _delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        group, version = api_version.split("/")
        try:
            await asyncio.to_thread(
                self.custom.delete_namespaced_custom_object, group, version, namespace, _PLURALS[kind], name
            )
        except ApiException as exc:
            if exc.status != 404:
                raise _api_error(exc) from exc
        except Exception as exc:
            raise BackendError(f"Kubernetes API unreachable: {exc}") from exc

    async def _fence(self, namespace: str) -> None:
        """A namespace's first agent (in this process) applies its tenancy objects; applying
        them again after a restart changes nothing (server-side apply)."""
        if self._tenant_options is None or namespace in self._fenced:
            return
        for obj in tenancy.for_namespace(namespace, self._tenant_options):
            await self._call(
                self._typed[obj["kind"]],
                obj["metadata"]["name"],
                namespace,
                obj,
                field_manager=manifests.FIELD_MANAGER,
                force=True,
                _content_type=APPLY,
            )
        self._fenced.add(namespace)

    async def _in_namespace(self, namespace: str, apply: Callable[[], Awaitable[T]]) -> T:
        """`apply`; when the namespace is missing, create it (with its tenant objects) and apply
        again, or raise `NamespaceMissing` when the registry may not create it."""
        try:
            return await apply()
        except NamespaceMissing:
            self._fenced.discard(namespace)  # a namespace deleted since: fence it again
            await self._create_namespace(namespace)
            return await apply()

    async def _create_namespace(self, namespace: str) -> None:
        if not self.create_namespaces:
            raise NamespaceMissing(
                namespace,
                f": create it (kubectl create namespace {namespace}) or set PAR_CREATE_NAMESPACES=true",
            )
        try:
            body: Any = tenancy.namespace(namespace)  # the client takes plain dicts
            await asyncio.to_thread(k8s.CoreV1Api(self.api).create_namespace, body)
        except ApiException as exc:
            if exc.status == 403:
                raise NamespaceMissing(
                    namespace, f" and the registry may not create it ({_reason(exc)}): create it first"
                ) from exc
            if exc.status != 409:  # 409: created meanwhile by someone else, as wanted
                raise _api_error(exc) from exc
        except Exception as exc:
            raise BackendError(f"Kubernetes API unreachable: {exc}") from exc
        log.info("namespace created", extra={"namespace": namespace})

    async def deploy(self, spec: DeploymentSpec) -> DeploymentStatus:
        return await self._in_namespace(spec.namespace, lambda: self._deploy(spec))

    async def _deploy(self, spec: DeploymentSpec) -> DeploymentStatus:
        await self._fence(spec.namespace)
        if spec.broker:
            # The agent's K_SINK broker, where Knative Eventing is installed; without Eventing the
            # agent is deployed all the same (a Trigger, which does need Eventing, says so).
            try:
                await self._apply(manifests.broker(spec.namespace, spec.broker, self.options))
            except KindNotInstalled as exc:
                where = {"agent": f"{spec.namespace}/{spec.agent}", "error": str(exc)}
                log.warning("Broker not applied", extra=where)
        applied = await self._apply(manifests.service(spec, self.options))
        return status_from_service(applied)

    async def undeploy(self, namespace: str, agent: str) -> None:
        await self._delete(manifests.SERVING, "Service", namespace, agent)

    async def status(self, namespace: str, agent: str) -> DeploymentStatus:
        return status_from_service(await self._get(manifests.SERVING, "Service", namespace, agent))

    async def apply_trigger(self, spec: TriggerSpec) -> None:
        async def apply() -> None:
            await self._apply(manifests.broker(spec.namespace, spec.broker, self.options))
            await self._apply(manifests.trigger(spec))

        await self._in_namespace(spec.namespace, apply)

    async def delete_trigger(self, namespace: str, name: str) -> None:
        await self._delete(manifests.EVENTING, "Trigger", namespace, name)

    async def watch(
        self, namespace: str, agent: str, max_wait: float = 300.0
    ) -> AsyncIterator[DeploymentStatus]:
        """The Service's status now, then on every change, until terminal (a Service not there
        yet is waited for) or `max_wait` seconds."""
        first = True
        async for status in self._changes(namespace, agent, time.monotonic() + max_wait):
            yield status
            if status.terminal and not (first and status.phase is Phase.absent):
                return
            first = False

    def follow(self, namespace: str, agent: str, max_wait: float = 300.0) -> AsyncIterator[DeploymentStatus]:
        """Past Ready too: a revision can fail later and another field manager can change the
        Service, and the stored status must show it. Ends once the Service is absent (deleted)
        or the caller stops; an API server that is away is waited for, however long."""
        return self._until_absent(namespace, agent)

    async def _until_absent(self, namespace: str, agent: str) -> AsyncIterator[DeploymentStatus]:
        async for status in self._changes(namespace, agent, None):
            yield status
            if status.phase is Phase.absent:
                return

    async def _changes(
        self, namespace: str, name: str, deadline: float | None
    ) -> AsyncIterator[DeploymentStatus]:
        """The current status, then each change, until `deadline` (None: until the caller stops).
        List, then watch from the list's resourceVersion; a watch that ends is opened again from
        the last version seen, `410 Gone` lists again, and any failure to reach or be answered by
        the API server is retried with capped exponential backoff."""
        last: DeploymentStatus | None = None
        since: str | None = None  # the resourceVersion to watch from; None lists first
        outage = _Outage(f"{namespace}/{name}")
        current: dict[str, Any] | None = None  # the Service as last seen
        crash: tuple[str, Condition] | None = None  # (revision, why its pods crash), if they do
        while deadline is None or deadline > time.monotonic():
            remaining = WATCH_SECONDS if deadline is None else deadline - time.monotonic()
            opened, events, fresh = time.monotonic(), 0, since is None
            try:
                if since is None:
                    current, since = await self._list(namespace, name)
                if _rolling_out(current):
                    # Knative keeps a crashing revision Unknown until its progress deadline
                    # (600 s): its pods say why at once. Looked at between short watches.
                    crash = await self._crash(namespace, current)
                    remaining = min(remaining, POD_CHECK_SECONDS)
                if (status := _with_crash(status_from_service(current), crash, current)) != last:
                    last = status
                    yield status
                async for event_type, obj in self._watch_once(namespace, name, since, remaining):
                    outage.answered()
                    if event_type == _OPENED:
                        continue
                    events += 1
                    since = obj.get("metadata", {}).get("resourceVersion") or since
                    if event_type == "BOOKMARK":
                        continue
                    current = None if event_type == "DELETED" else obj
                    status = _with_crash(status_from_service(current), crash, current)
                    if status != last:
                        last = status
                        yield status
            except ApiException as exc:
                problem = f"answered {exc.status}: {_reason(exc)}"
                if exc.status == 410:  # that resourceVersion is gone from the server's history
                    since = None
                    if not fresh:  # list again at once; a version it just listed is retried with backoff
                        log.info("resourceVersion expired, listing again", extra={"agent": outage.where})
                        continue
            except Exception as exc:  # urllib3's connection errors, timeouts, a cut stream
                problem = f"unreachable: {type(exc).__name__}: {exc}"
            else:
                if events or time.monotonic() - opened > 1.0:
                    continue  # a watch that ran its course: open the next one at once
                problem = "closed the watch at once"
            delay = outage.failed(problem)
            if deadline is not None:
                delay = min(delay, max(0.0, deadline - time.monotonic()))
            await asyncio.sleep(delay)

    async def _crash(self, namespace: str, service: dict[str, Any] | None) -> tuple[str, Condition] | None:
        """A failed `Ready` condition when a container of the Service's current revision is in
        CrashLoopBackOff or has terminated with an error: its termination message, else the last
        lines of its log. None when its pods are fine (or cannot be read: the watch goes on)."""
        revision = _revision(service)
        if revision is None:
            return None
        try:
            pods = await asyncio.to_thread(
                self._core_watching.list_namespaced_pod,
                namespace,
                label_selector=f"{REVISION_LABEL}={revision}",
                _request_timeout=_TIMEOUT,
            )
        except Exception as exc:  # RBAC without pods, an API server away: Knative's word only
            log.debug("pods not read", extra={"revision": revision, "error": str(exc)})
            return None
        for pod in pods.items or []:
            statuses = pod.status.container_statuses if pod.status is not None else None
            for container in statuses or []:
                if container.name == "queue-proxy":
                    continue
                state, before = container.state, container.last_state
                waiting = state.waiting if state is not None else None
                now_dead = state.terminated if state is not None else None
                terminated = now_dead or (before.terminated if before is not None else None)
                crashing = waiting is not None and waiting.reason == "CrashLoopBackOff"
                if not crashing and not (now_dead is not None and now_dead.exit_code):
                    continue
                why = (terminated.message or "").strip() if terminated is not None else ""
                if not why and pod.metadata is not None and pod.metadata.name:
                    why = await self._last_log_lines(namespace, pod.metadata.name, container.name)
                code = f" (exit code {terminated.exit_code})" if terminated is not None else ""
                reason = "CrashLoopBackOff" if crashing else (terminated and terminated.reason) or "Error"
                message = f"container {container.name} of revision {revision}{code}: {why or 'no message'}"
                return revision, Condition(type="Ready", status="False", reason=reason, message=message)
        return None

    async def _last_log_lines(self, namespace: str, pod: str, container: str, lines: int = 5) -> str:
        """The end of the previous (crashed) container's log, on one line; '' when unreadable."""
        try:
            text = await asyncio.to_thread(
                self._core_watching.read_namespaced_pod_log,
                pod,
                namespace,
                container=container,
                previous=True,
                tail_lines=lines,
                _request_timeout=_TIMEOUT,
            )
        except Exception:
            return ""
        return " | ".join(line.strip() for line in str(text).splitlines() if line.strip())

    async def _list(self, namespace: str, name: str) -> tuple[dict[str, Any] | None, str]:
        """The Service (or None) and the resourceVersion to watch it from."""
        group, version = manifests.SERVING.split("/")
        found = cast(
            "dict[str, Any]",
            await asyncio.to_thread(
                self._watching.list_namespaced_custom_object,
                group,
                version,
                namespace,
                "services",
                field_selector=f"metadata.name={name}",
                _request_timeout=_TIMEOUT,
            ),
        )
        items = found.get("items") or []
        return (items[0] if items else None), found["metadata"]["resourceVersion"]

    async def _watch_once(
        self, namespace: str, name: str, since: str, seconds: float
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """One watch request from `since`, read in a worker thread. An ERROR event raises its
        Status as an ApiException (410 among them); a request that fails raises what it raised."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        group, version = manifests.SERVING.split("/")
        lock, stream = threading.Lock(), _Stream()
        seconds = max(1, int(seconds))

        def post(item: tuple[str, Any]) -> None:
            if not stream.stopped:
                with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
                    loop.call_soon_threadsafe(queue.put_nowait, item)

        def pump() -> None:
            response: Any = None
            try:
                response = self._watching.list_namespaced_custom_object(
                    group,
                    version,
                    namespace,
                    "services",
                    field_selector=f"metadata.name={name}",
                    resource_version=since,
                    allow_watch_bookmarks=True,
                    watch=True,
                    timeout_seconds=seconds,
                    _preload_content=False,
                    _request_timeout=(_TIMEOUT[0], seconds + _TIMEOUT[1]),
                )
                with lock:
                    if stream.stopped:
                        return
                    stream.response = response
                if not 200 <= response.status <= 299:
                    raise ApiException(http_resp=response)
                post(("event", {"type": _OPENED, "object": {}}))
                for line in iter_resp_lines(response):
                    post(("event", json.loads(line)))
                post(("end", None))
            except Exception as exc:
                post(("error", exc))
            finally:
                if response is not None:
                    with contextlib.suppress(Exception):
                        response.close()

        threading.Thread(target=pump, name=f"watch-{namespace}-{name}", daemon=True).start()
        try:
            while True:
                kind, payload = await queue.get()
                if kind == "end":
                    return
                if kind == "error":
                    raise payload
                if payload.get("type") == "ERROR":
                    failure = payload.get("object") or {}
                    raise ApiException(status=failure.get("code"), body=json.dumps(failure))
                yield payload["type"], payload["object"]
        finally:
            with lock:
                stream.stopped = True
                stream.cut()

    async def logs(self, namespace: str, agent: str, request: LogRequest) -> AsyncIterator[dict[str, Any]]:
        """The pods' logs through the Kubernetes pod log API (`knative_logs.py`)."""
        return await PodLogs(self._core_watching, self._call).open(namespace, agent, request)

    async def aclose(self) -> None:
        for api in (self.api, self._watching.api_client):
            with contextlib.suppress(Exception):
                await asyncio.to_thread(api.close)


class _Outage:
    """Whether the API server answers one watch's requests; logged when that changes, not on
    every retry. `failed` returns how long to wait before the next attempt."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.problem: str | None = None
        self.failures = 0
        self.since = 0.0

    def failed(self, problem: str) -> float:
        if self.problem is None:
            self.since = time.monotonic()
        if problem.split(":")[0] != (self.problem or "").split(":")[0]:
            log.warning(
                "Kubernetes API %s; retrying with backoff until it answers",
                problem,
                extra={"agent": self.where},
            )
        self.problem, self.failures = problem, self.failures + 1
        return min(BACKOFF[1], BACKOFF[0] * 2 ** (self.failures - 1)) * random.uniform(0.5, 1.0)

    def answered(self) -> None:
        if self.problem is not None:
            after = round(time.monotonic() - self.since, 1)
            log.info("watch resumed", extra={"agent": self.where, "after_s": after})
        self.problem, self.failures = None, 0


class _Stream:
    """The open response of a watch a worker thread reads, and whether its reader was told to stop."""

    def __init__(self) -> None:
        self.response: Any = None
        self.stopped = False

    def cut(self) -> None:
        """Wake the reader blocked in the response: shut the socket down. (Closing the response
        here would wait on the lock the blocked read holds, stalling the event loop.)"""
        sock = getattr(getattr(self.response, "connection", None), "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _status_details(exc: ApiException) -> dict[str, Any]:
    try:
        return dict(json.loads(exc.body or "{}").get("details") or {})
    except (ValueError, AttributeError):
        return {}


def _kind_missing(exc: ApiException) -> bool:
    """A 404 to an apply is the kind not being served (no CRD), unless a namespace is missing."""
    return exc.status == 404 and _status_details(exc).get("kind") != "namespaces"


def _api_error(exc: ApiException) -> BackendError:
    """Refusals of the object itself (invalid, conflicting, forbidden), a namespace that does not
    exist (`NamespaceMissing`), vs an API server in trouble."""
    details = _status_details(exc)
    if exc.status == 404 and details.get("kind") == "namespaces" and details.get("name"):
        return NamespaceMissing(str(details["name"]))
    kind = BackendRejected if exc.status in (400, 403, 409, 422) else BackendError
    return kind(f"Kubernetes API answered {exc.status}: {_reason(exc)}")


def _reason(exc: ApiException) -> str:
    """The `message` of the Kubernetes Status body when there is one."""
    import json

    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except ValueError:
        return str(exc.reason)
