"""An agent's output: `GET /v1/namespaces/{ns}/agents/{name}/logs`, one JSON object a line
(`application/x-ndjson`), streamed while `follow=true` as `kubectl logs -f` streams a pod's.

Readable with an admin key, or with an agents key whose grants cover the agent (the same grants
the gateway checks for calling it): a key granted only other agents gets 403 `forbidden`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from gateway.hosts import Target
from gateway.policy import Grants
from registry.api.deps import Session, State, _authorization
from registry.api.views import NamespacePath
from registry.auth import Caller, authenticate
from registry.models import ApiKey
from registry.problems import Problem
from registry.queries import load_agent
from registry.spec import LogRequest
from runtime.settingtypes import parse_duration

router = APIRouter(tags=["logs"])


async def _reader(state: State, session: Session, request: Request, name: str, namespace: str) -> Caller:
    """An admin key, or a key granted this agent; 401/403 otherwise."""
    caller = await authenticate(state.db.sessions, _authorization(request), state.keys)
    if caller.admin and caller.role != "gateway":
        return caller
    record = await session.get(ApiKey, caller.id)
    grants = Grants(record.grants or []) if record is not None and caller.role != "gateway" else Grants([])
    if not grants.allows(Target(namespace, name)):
        raise Problem(403, "Forbidden", f"this key is not granted {namespace}/{name}", code="forbidden")
    return caller


@router.get(
    "/v1/namespaces/{namespace}/agents/{name}/logs",
    responses={200: {"content": {"application/x-ndjson": {}}, "description": "one JSON object a line"}},
)
async def agent_logs(
    name: str,
    state: State,
    session: Session,
    caller: Annotated[Caller, Depends(_reader)],
    namespace: str = NamespacePath,
    version: str | None = Query(None, description="only this version's instances"),
    instance: str | None = Query(None, description="only this instance (a pod on Knative)"),
    since: str | None = Query(None, description="only lines newer than this duration: 10m, 1h, 90s"),
    tail: int | None = Query(None, ge=0, description="the last N lines"),
    follow: bool = Query(False, description="keep streaming new lines, from new instances too"),
) -> StreamingResponse:
    """Lines `{"time", "agent", "version", "instance", "line"}`, oldest first."""
    await load_agent(session, namespace, name)
    await session.close()  # a followed stream may last hours: hold no connection
    since_seconds = None
    if since is not None:
        try:
            since_seconds = parse_duration(since)
        except ValueError as exc:
            raise Problem(422, "Invalid request", f"since: {exc}", code="invalid_request") from None
        if since_seconds <= 0:
            raise Problem(422, "Invalid request", "since must be a positive duration", code="invalid_request")
    asked = LogRequest(
        version=version, instance=instance, since_seconds=since_seconds, tail=tail, follow=follow
    )
    records = await state.backend.logs(namespace, name, asked)
    return StreamingResponse(_ndjson(records), media_type="application/x-ndjson")


async def _ndjson(records: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    try:
        async for record in records:
            yield json.dumps(record, ensure_ascii=False).encode() + b"\n"
    finally:
        closing = getattr(records, "aclose", None)
        if closing is not None:
            await closing()
