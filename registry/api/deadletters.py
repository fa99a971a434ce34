"""Dead letters of a namespace's Triggers, on the registry API: the dead-letter store's own API
(`eventing.dlq_api`, par up's or the Knative Service's at PAR_DEAD_LETTERS_URL) behind the
registry's admin keys, one namespace at a time."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from registry.api.deps import Admin, State
from registry.api.views import NamespacePath
from registry.problems import Problem

router = APIRouter(tags=["dead letters"])
FILTERS = ("trigger", "type", "since", "until", "limit")


async def _store(
    state: State, method: str, path: str, params: dict[str, str] | None = None
) -> httpx.Response:
    settings = state.settings
    if not settings.dead_letters_url:
        # Not an outage: nothing to retry until the registry is configured with one.
        raise Problem(404, "No dead-letter store", "this registry has none: set PAR_DEAD_LETTERS_URL",
                      code="dead_letters_not_configured")
    token = settings.dead_letters_token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with httpx.AsyncClient(base_url=settings.dead_letters_url.rstrip("/"), timeout=600) as client:
            response = await client.request(method, path, params=params, headers=headers)
    except httpx.HTTPError as exc:
        raise Problem(503, "Dead-letter store unreachable", str(exc),
                      code="dead_letters_unavailable") from None
    if response.status_code == 404:
        raise Problem(404, "Dead letter not found", response.json().get("detail"),
                      code="dead_letter_not_found")
    if response.status_code >= 400 and response.status_code != 502:
        raise Problem(502, "Dead-letter store refused", response.text[:300], code="dead_letters_unavailable")
    return response


def _params(request: Request, namespace: str) -> dict[str, str]:
    params = {k: v for k, v in request.query_params.items() if k in FILTERS}
    trigger = params.get("trigger", "")
    params["trigger"] = f"{namespace}/{trigger.rsplit('/', 1)[-1]}" if trigger else ""
    params["namespace"] = namespace
    return {k: v for k, v in params.items() if v}


async def _in_namespace(state: State, namespace: str, entry_id: str) -> dict[str, Any]:
    entry: dict[str, Any] = (await _store(state, "GET", f"/dead-letters/{entry_id}")).json()
    if entry.get("namespace") != namespace:
        raise Problem(404, "Dead letter not found", f"no dead letter {entry_id} in {namespace}",
                      code="dead_letter_not_found")
    return entry


@router.get("/v1/namespaces/{namespace}/dead-letters")
async def list_dead_letters(request: Request, state: State, _: Admin, namespace: str = NamespacePath) -> Any:
    return (await _store(state, "GET", "/dead-letters", _params(request, namespace))).json()


@router.get("/v1/namespaces/{namespace}/dead-letters/{entry_id}")
async def show_dead_letter(entry_id: str, state: State, _: Admin, namespace: str = NamespacePath) -> Any:
    return await _in_namespace(state, namespace, entry_id)


@router.post("/v1/namespaces/{namespace}/dead-letters/{entry_id}/redrive")
async def redrive_dead_letter(
    entry_id: str, state: State, _: Admin, namespace: str = NamespacePath
) -> JSONResponse:
    await _in_namespace(state, namespace, entry_id)
    response = await _store(state, "POST", f"/dead-letters/{entry_id}/redrive")
    return JSONResponse(response.json(), status_code=response.status_code)


@router.post("/v1/namespaces/{namespace}/dead-letters/redrive")
async def redrive_dead_letters(
    request: Request, state: State, _: Admin, namespace: str = NamespacePath
) -> Any:
    return (await _store(state, "POST", "/dead-letters/redrive", _params(request, namespace))).json()


@router.delete("/v1/namespaces/{namespace}/dead-letters")
async def purge_dead_letters(request: Request, state: State, _: Admin, namespace: str = NamespacePath) -> Any:
    return (await _store(state, "DELETE", "/dead-letters", _params(request, namespace))).json()
