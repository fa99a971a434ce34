"""FakeKubeAPI: a FAKE Kubernetes API server, kept only for what the real one cannot be made to do.

The Knative backend's tests run against a real kube-apiserver (tests.support.kube_apiserver).
This fake remains for two things that server does not do here: Knative's admission webhook
refusing a Service template changed under the same revision name (no Knative webhook runs with
the real server), and answering every request with an error status on demand (`fail_with`).

It is a real HTTP server on loopback (uvicorn), spoken to by the official `kubernetes` client
exactly as a cluster would be, for the custom-resource paths the registry uses:

    PATCH  /apis/{group}/{version}/namespaces/{ns}/{plural}/{name}   server-side apply only
    GET    /apis/{group}/{version}/namespaces/{ns}/{plural}/{name}
    DELETE /apis/{group}/{version}/namespaces/{ns}/{plural}/{name}
    GET    /apis/{group}/{version}/namespaces/{ns}/{plural}?watch=true&fieldSelector=metadata.name=X

What it models: apply requires `fieldManager` and `Content-Type: application/apply-patch+yaml`;
applied objects are validated against the real Knative CRD schemas (strict, so unknown fields are
refused rather than pruned) and rejected with a 422 `Status`, as are names that are not DNS-1123
subdomains; Knative's refusal (400) of a Service template changed under the same revision name;
uid, creationTimestamp, resourceVersion, generation (bumped when `spec` changes), managedFields;
404 `Status` bodies; watches streaming ADDED/MODIFIED/DELETED events from a resourceVersion
until `timeoutSeconds`.

What it does NOT model: no Knative controllers (tests set `status` themselves with
`set_status`, playing the controller), no admission webhooks or defaulting, no discovery, RBAC,
authentication, other field managers' conflicts, list pagination, or label selectors.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jsonschema
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.kube_schemas import crd_schemas
from tests.support.net import free_port, wait_http

Key = tuple[str, str, str, str, str]  # group, version, plural, namespace, name
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_KINDS = {"services": "Service", "brokers": "Broker", "triggers": "Trigger"}


def _status(code: int, reason: str, message: str) -> JSONResponse:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return JSONResponse(body, status_code=code)


def _unnamed_template_change(existing: dict[str, Any] | None, applied: dict[str, Any]) -> str | None:
    """Knative's webhook: a Service template that keeps its revision name must not change
    (revisions are immutable). Modelled for the current template only, not older revisions."""
    if existing is None:
        return None
    old, new = existing["spec"]["template"], applied["spec"]["template"]
    name = old.get("metadata", {}).get("name")
    if name and name == new.get("metadata", {}).get("name") and old != new:
        return f"Saw the following changes without a name change (-old +new): spec.template (revision {name})"
    return None


@dataclass
class FakeKubeAPI:
    objects: dict[Key, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_with: int | None = None  # answer every request with this status (an API server in trouble)
    _revision: int = 0
    _events: list[tuple[int, Key, str, dict[str, Any]]] = field(default_factory=list)
    _changed: asyncio.Condition | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    url: str = ""

    # --- what tests use -------------------------------------------------------------------
    def get(self, group: str, version: str, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.objects.get((group, version, plural, namespace, name)))

    def set_status(
        self, group: str, version: str, plural: str, namespace: str, name: str, status: dict
    ) -> None:
        """Play the Knative controller: write `status` (observedGeneration = generation)."""
        assert self._loop is not None
        done = asyncio.run_coroutine_threadsafe(
            self._set_status((group, version, plural, namespace, name), status), self._loop
        )
        done.result(timeout=10)

    def kubeconfig(self, path: Any) -> Any:
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "fake",
                    "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                    "users": [{"name": "fake", "user": {"token": "fake-token"}}],
                    "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
                }
            )
        )
        return path

    # --- the server -----------------------------------------------------------------------
    async def _set_status(self, key: Key, status: dict[str, Any]) -> None:
        obj = self.objects[key]
        obj["status"] = {**status, "observedGeneration": obj["metadata"]["generation"]}
        await self._record(key, "MODIFIED", obj)

    async def _record(self, key: Key, event: str, obj: dict[str, Any]) -> None:
        assert self._changed is not None
        self._revision += 1
        obj["metadata"]["resourceVersion"] = str(self._revision)
        self._events.append((self._revision, key, event, copy.deepcopy(obj)))
        async with self._changed:
            self._changed.notify_all()

    async def _object(self, request: Request) -> Response:
        p = request.path_params
        key: Key = (p["group"], p["version"], p["plural"], p["namespace"], p["name"])
        self.requests.append(
            {
                "method": request.method,
                "path": request.url.path,
                "query": dict(request.query_params),
                "content_type": request.headers.get("content-type"),
            }
        )
        if self.fail_with:
            return _status(self.fail_with, "InternalError", "the fake API server was told to fail")
        if request.method == "GET":
            obj = self.objects.get(key)
            return (
                JSONResponse(obj)
                if obj
                else _status(404, "NotFound", f'{p["plural"]} "{p["name"]}" not found')
            )
        if request.method == "DELETE":
            obj = self.objects.pop(key, None)
            if obj is None:
                return _status(404, "NotFound", f'{p["plural"]} "{p["name"]}" not found')
            await self._record(key, "DELETED", obj)
            return JSONResponse({"kind": "Status", "apiVersion": "v1", "status": "Success"})
        return await self._apply(request, key)

    async def _apply(self, request: Request, key: Key) -> Response:
        if request.headers.get("content-type", "").split(";")[0] != "application/apply-patch+yaml":
            return _status(415, "UnsupportedMediaType", "this fake only implements server-side apply")
        manager = request.query_params.get("fieldManager")
        if not manager:
            return _status(
                400, "BadRequest", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value'
            )
        applied = json.loads(await request.body())
        group, version, plural, namespace, name = key
        schema = crd_schemas().get((f"{group}/{version}", _KINDS.get(plural, "")))
        if schema is None:
            return _status(404, "NotFound", f"the server could not find the requested resource ({plural})")
        try:
            jsonschema.validate(applied, schema, cls=jsonschema.Draft7Validator)
        except jsonschema.ValidationError as exc:
            path = ".".join(str(part) for part in exc.absolute_path)
            return _status(
                422, "Invalid", f'{_KINDS[plural]}.{group} "{name}" is invalid: {path}: {exc.message}'
            )
        if (
            applied["metadata"].get("name") != name
            or applied["metadata"].get("namespace", namespace) != namespace
        ):
            return _status(400, "BadRequest", "the name/namespace of the object does not match the URL")
        if not _DNS_SUBDOMAIN.match(name):
            return _status(
                422, "Invalid", f'metadata.name: Invalid value: "{name}": a lowercase RFC 1123 subdomain'
            )
        existing = self.objects.get(key)
        refused = _unnamed_template_change(existing, applied) if plural == "services" else None
        if refused:
            return _status(400, "BadRequest", refused)
        meta = applied["metadata"]
        if existing is None:
            meta.update(
                uid=str(uuid.uuid4()),
                generation=1,
                creationTimestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
            obj, event = applied, "ADDED"
        else:
            old_meta = existing["metadata"]
            generation = old_meta["generation"] + (1 if existing.get("spec") != applied.get("spec") else 0)
            meta.update(
                uid=old_meta["uid"], creationTimestamp=old_meta["creationTimestamp"], generation=generation
            )
            obj, event = {**applied, "status": existing.get("status", {})}, "MODIFIED"
        meta["managedFields"] = [
            {"manager": manager, "operation": "Apply", "apiVersion": applied["apiVersion"]}
        ]
        self.objects[key] = obj
        await self._record(key, event, obj)
        return JSONResponse(obj, status_code=201 if event == "ADDED" else 200)

    async def _list(self, request: Request) -> Response:
        p = request.path_params
        self.requests.append({"method": "GET", "path": request.url.path, "query": dict(request.query_params)})
        if self.fail_with:
            return _status(self.fail_with, "InternalError", "the fake API server was told to fail")
        if request.query_params.get("watch") not in ("true", "1"):
            return _status(405, "MethodNotAllowed", "this fake only implements watches on collections")
        selector = request.query_params.get("fieldSelector", "")
        wanted = selector.removeprefix("metadata.name=") if selector.startswith("metadata.name=") else None
        since = int(request.query_params.get("resourceVersion") or 0)
        timeout = float(request.query_params.get("timeoutSeconds") or 30)
        scope = (p["group"], p["version"], p["plural"], p["namespace"])

        async def stream() -> AsyncIterator[bytes]:
            assert self._changed is not None
            sent = since
            loop = asyncio.get_running_loop()
            end = loop.time() + timeout
            while loop.time() < end:
                for revision, key, event, obj in list(self._events):
                    if revision > sent and key[:4] == scope and (wanted is None or key[4] == wanted):
                        yield (json.dumps({"type": event, "object": obj}) + "\n").encode()
                    sent = max(sent, revision)
                async with self._changed:
                    try:
                        await asyncio.wait_for(self._changed.wait(), timeout=max(0.01, end - loop.time()))
                    except TimeoutError:
                        return

        return StreamingResponse(stream(), media_type="application/json")

    def app(self) -> Starlette:
        base = "/apis/{group}/{version}/namespaces/{namespace}/{plural}"
        return Starlette(
            routes=[
                Route(base + "/{name}", self._object, methods=["GET", "PATCH", "DELETE"]),
                Route(base, self._list, methods=["GET"]),
                Route("/healthz", lambda _r: Response("ok"), methods=["GET"]),
            ]
        )


@contextmanager
def running_fake_kube_api() -> Iterator[FakeKubeAPI]:
    """Serve a FakeKubeAPI on a free loopback port for the duration of the block."""
    fake = FakeKubeAPI()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            fake.app(), host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
        )
    )

    def run() -> None:
        async def main() -> None:
            fake._loop = asyncio.get_running_loop()
            fake._changed = asyncio.Condition()
            await server.serve()

        asyncio.run(main())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{fake.url}/healthz", timeout=20)
        yield fake
    finally:
        server.should_exit = True
        thread.join(timeout=10)
