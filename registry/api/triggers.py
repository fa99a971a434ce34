"""Triggers: which events on a broker reach which agent (or URI). Applied by the reconciler."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from registry.api.deps import Admin, Session, State
from registry.api.views import CursorQuery, LimitQuery, NamespacePath, keyset_page
from registry.knative import admission
from registry.models import Trigger
from registry.problems import Problem
from registry.queries import ensure_namespace
from registry.schemas import Page, TriggerCreate, TriggerOut

router = APIRouter(tags=["triggers"])


def trigger_out(row: Trigger) -> TriggerOut:
    return TriggerOut(
        namespace=row.namespace,
        name=row.name,
        broker=row.broker,
        filters=row.dialect_filters or row.filters,
        sink_agent=row.subscriber_agent,
        sink_uri=row.subscriber_uri,
        delivery=row.delivery,
        ordering=row.ordering,
        created_at=row.created_at,
    )


async def _load(session: Session, namespace: str, name: str) -> Trigger:
    row = await session.scalar(select(Trigger).where(Trigger.namespace == namespace, Trigger.name == name))
    if row is None:
        raise Problem(404, "Trigger not found", f"no trigger {namespace}/{name}", code="trigger_not_found")
    return row


@router.post("/v1/namespaces/{namespace}/triggers", status_code=201, response_model=TriggerOut)
async def create_trigger(
    body: TriggerCreate, state: State, session: Session, _: Admin, namespace: str = NamespacePath
) -> TriggerOut:
    taken = await session.scalar(
        select(Trigger.id).where(Trigger.namespace == namespace, Trigger.name == body.name)
    )
    if taken is not None:
        raise Problem(
            409, "Trigger exists", f"{namespace}/{body.name} already exists; delete it first",
            code="trigger_exists",
        )
    await ensure_namespace(session, namespace)
    row = Trigger(
        namespace=namespace,
        name=body.name,
        broker=body.broker,
        filters=body.filters if isinstance(body.filters, dict) else {},
        dialect_filters=body.filters if isinstance(body.filters, list) else [],
        subscriber_agent=body.sink_agent,
        subscriber_uri=body.sink_uri,
        delivery=body.delivery,
        ordering=body.ordering,
    )
    session.add(row)
    await session.flush()
    try:
        await state.reconciler.apply_trigger(row)
    except admission.Refused as exc:
        raise Problem(422, "Invalid Trigger", str(exc), code="invalid_trigger", field=exc.field) from None
    await session.commit()
    return trigger_out(row)


@router.get("/v1/namespaces/{namespace}/triggers", response_model=Page[TriggerOut])
async def list_triggers(
    session: Session,
    _: Admin,
    namespace: str = NamespacePath,
    limit: int = LimitQuery,
    cursor: str | None = CursorQuery,
) -> Page[TriggerOut]:
    query = select(Trigger).where(Trigger.namespace == namespace)
    rows, next_cursor = await keyset_page(session, query, [Trigger.name], cursor, limit)
    return Page(items=[trigger_out(r) for r in rows], next_cursor=next_cursor)


@router.get("/v1/namespaces/{namespace}/triggers/{name}", response_model=TriggerOut)
async def get_trigger(name: str, session: Session, _: Admin, namespace: str = NamespacePath) -> TriggerOut:
    return trigger_out(await _load(session, namespace, name))


@router.delete("/v1/namespaces/{namespace}/triggers/{name}", status_code=204)
async def delete_trigger(
    name: str, state: State, session: Session, _: Admin, namespace: str = NamespacePath
) -> None:
    row = await _load(session, namespace, name)
    await session.delete(row)
    await session.flush()
    await state.reconciler.delete_trigger(namespace, name)
    await session.commit()
