"""Admin API with Kubernetes-shaped paths: PUT/GET/DELETE Brokers and Triggers, live.

Bodies are the real Knative objects as JSON or YAML. Refusals are Kubernetes `Status` objects
(422 Invalid) whose `details.causes[0].field` names the wrong field.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from eventing.control import KINDS, Eventing
from eventing.kafka import KafkaUnavailable
from eventing.objects import API_VERSION, InvalidObject, load_documents
from runtime.compare import bearer_matches, only_value

PREFIX = "/apis/eventing.knative.dev/v1/namespaces/{namespace}/{plural}"
SETTLE_WITHIN = 5.0


async def _authorized(request: Request) -> None:
    """With PAR_EVENTING_ADMIN_TOKEN set, only its bearer may change or read objects (unset, the
    serve command refuses to start unless told PAR_EVENTING_INSECURE_NO_AUTH / --insecure-no-auth)."""
    token = request.app.state.eventing.settings.admin_token
    if token and not bearer_matches(only_value(request.headers.getlist("authorization")), token):
        raise HTTPException(401, "admin API: missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})


router = APIRouter(prefix=PREFIX, dependencies=[Depends(_authorized)])


def _status(code: int, reason: str, message: str, field: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
                            "reason": reason, "code": code}
    if field:
        body["details"] = {"causes": [{"field": field, "message": message}]}
    return JSONResponse(body, status_code=code)


def _plural(plural: str) -> None:
    if plural not in KINDS:
        raise HTTPException(404, f"unknown resource {plural!r} (brokers, triggers)")


async def _write(request: Request, plural: str, namespace: str, name: str | None) -> JSONResponse:
    _plural(plural)
    eventing: Eventing = request.app.state.eventing
    try:
        docs = load_documents((await request.body()).decode("utf-8", "replace"))
        if len(docs) != 1:
            raise InvalidObject("body", f"must hold exactly one object, found {len(docs)}")
        obj, created = await eventing.apply(docs[0], plural, namespace, name)
        if plural == "triggers":
            # answered once the Trigger has its offsets (milliseconds; bounded): the status then
            # says Ready, and an event sent right after is the Trigger's
            obj = await eventing.settled(obj, SETTLE_WITHIN)
    except InvalidObject as exc:
        return _status(422, "Invalid", str(exc), exc.field)
    except (KafkaUnavailable, OSError, RuntimeError) as exc:
        return _status(503, "ServiceUnavailable", f"Kafka: {exc}")
    return JSONResponse(obj, status_code=201 if created else 200)


@router.put("/{name}")
async def put_object(request: Request, namespace: str, plural: str, name: str) -> JSONResponse:
    return await _write(request, plural, namespace, name)


@router.post("")
async def create_object(request: Request, namespace: str, plural: str) -> JSONResponse:
    return await _write(request, plural, namespace, None)


@router.get("/{name}")
async def get_object(request: Request, namespace: str, plural: str, name: str) -> JSONResponse:
    _plural(plural)
    obj = request.app.state.eventing.view(plural, namespace, name)
    if obj is None:
        return _status(404, "NotFound", f'{plural} "{name}" not found')
    return JSONResponse(obj)


@router.get("")
async def list_objects(request: Request, namespace: str, plural: str) -> JSONResponse:
    _plural(plural)
    items = request.app.state.eventing.list(plural, namespace)
    return JSONResponse({"apiVersion": API_VERSION, "kind": f"{KINDS[plural]}List", "items": items})


@router.delete("/{name}")
async def delete_object(request: Request, namespace: str, plural: str, name: str) -> JSONResponse:
    _plural(plural)
    obj = await request.app.state.eventing.delete(plural, namespace, name)
    if obj is None:
        return _status(404, "NotFound", f'{plural} "{name}" not found')
    return JSONResponse(obj)
