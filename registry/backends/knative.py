"""Knative backend: server-side apply of the generated objects through the official `kubernetes`
client (field manager `par-registry`), delete on undeploy, and a watch of the Service's
conditions (`Ready`, `ConfigurationsReady`, `RoutesReady`) mapped to registry status and URL.

The client is synchronous, so calls run in worker threads; a watch streams in a thread and
hands events to the event loop through a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar, cast

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException

from registry import manifests
from registry.backends.base import (
    BackendError,
    BackendRejected,
    Condition,
    DeployBackend,
    DeploymentSpec,
    DeploymentStatus,
    Phase,
    TriggerSpec,
)
from registry.settings import RegistrySettings

T = TypeVar("T")
APPLY = "application/apply-patch+yaml"
_PLURALS = {"Service": "services", "Broker": "brokers", "Trigger": "triggers"}
_SHOWN = ("ConfigurationsReady", "RoutesReady", "Ready")


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
    stale = status.get("observedGeneration", 0) < meta.get("generation", 0)
    ready = next((c for c in conditions if c.type == "Ready"), None)
    if stale or ready is None or ready.status == "Unknown":
        phase, message = Phase.deploying, ready.message if ready and not stale else None
    elif ready.status == "True":
        phase, message = Phase.ready, None
    else:
        phase, message = Phase.failed, ": ".join(p for p in (ready.reason, ready.message) if p) or "not ready"
    return DeploymentStatus(
        phase=phase,
        url=status.get("url") if phase is Phase.ready else None,
        conditions=conditions,
        message=message,
        generation=int(generation) if generation and generation.isdigit() else None,
    )


class KnativeBackend(DeployBackend):
    name = "knative"

    def __init__(self, api: k8s.ApiClient, options: manifests.ManifestOptions | None = None) -> None:
        self.api = api
        self.custom = k8s.CustomObjectsApi(api)
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
        return cls(api, manifests.options_from(settings))

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

    async def deploy(self, spec: DeploymentSpec) -> DeploymentStatus:
        if spec.broker:
            await self._apply(manifests.broker(spec.namespace, spec.broker, self.options))
        applied = await self._apply(manifests.service(spec, self.options))
        return status_from_service(applied)

    async def undeploy(self, namespace: str, agent: str) -> None:
        await self._delete(manifests.SERVING, "Service", namespace, agent)

    async def status(self, namespace: str, agent: str) -> DeploymentStatus:
        return status_from_service(await self._get(manifests.SERVING, "Service", namespace, agent))

    async def apply_trigger(self, spec: TriggerSpec) -> None:
        await self._apply(manifests.broker(spec.namespace, spec.broker, self.options))
        await self._apply(manifests.trigger(spec))

    async def delete_trigger(self, namespace: str, name: str) -> None:
        await self._delete(manifests.EVENTING, "Trigger", namespace, name)

    async def watch(
        self, namespace: str, agent: str, max_wait: float = 300.0
    ) -> AsyncIterator[DeploymentStatus]:
        """The Service's status now, then on every change (a Kubernetes watch), until terminal."""
        deadline = time.monotonic() + max_wait
        current = await self._get(manifests.SERVING, "Service", namespace, agent)
        last = status_from_service(current)
        yield last
        if last.terminal and last.phase is not Phase.absent:
            return
        since = (current or {}).get("metadata", {}).get("resourceVersion")
        async for event_type, obj in self._events(namespace, agent, since, deadline):
            status = status_from_service(None if event_type == "DELETED" else obj)
            if status != last:
                last = status
                yield status
                if status.terminal:
                    return

    async def _events(
        self, namespace: str, name: str, since: str | None, deadline: float
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        watcher, stopped = k8s_watch.Watch(), threading.Event()
        group, version = manifests.SERVING.split("/")

        def pump() -> None:
            try:
                while (remaining := deadline - time.monotonic()) > 0:
                    kwargs: dict[str, Any] = {
                        "field_selector": f"metadata.name={name}",
                        "timeout_seconds": max(1, int(remaining)),
                    }
                    if since:
                        kwargs["resource_version"] = since
                    for event in watcher.stream(
                        self.custom.list_namespaced_custom_object,
                        group,
                        version,
                        namespace,
                        "services",
                        **kwargs,
                    ):
                        loop.call_soon_threadsafe(queue.put_nowait, (event["type"], event["object"]))
                    if stopped.is_set():
                        return
            except Exception as exc:
                loop.call_soon_threadsafe(queue.put_nowait, ("ERROR", exc))
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, ("END", None))

        thread = threading.Thread(target=pump, name=f"watch-{namespace}-{name}", daemon=True)
        thread.start()
        try:
            while True:
                try:
                    async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                        kind, payload = await queue.get()
                except TimeoutError:
                    return
                if kind == "END":
                    return
                if kind == "ERROR":
                    raise BackendError(f"watching {namespace}/{name} failed: {payload}")
                yield kind, payload
        finally:
            stopped.set()
            watcher.stop()

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.api.close)


def _api_error(exc: ApiException) -> BackendError:
    """Refusals of the object itself (invalid, conflicting, forbidden) vs an API server in trouble."""
    kind = BackendRejected if exc.status in (400, 403, 409, 422) else BackendError
    return kind(f"Kubernetes API answered {exc.status}: {_reason(exc)}")


def _reason(exc: ApiException) -> str:
    """The `message` of the Kubernetes Status body when there is one."""
    import json

    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except ValueError:
        return str(exc.reason)
