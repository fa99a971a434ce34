"""Agents and their versions: create, list, get, change, delete; upload a package version."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile
from sqlalchemy import bindparam, select
from starlette.concurrency import run_in_threadpool

from registry import feed
from registry.api.deps import Admin, Session, State
from registry.api.views import (
    CursorQuery,
    LimitQuery,
    NamespacePath,
    agent_out,
    agents_out,
    json_response,
    keyset_page,
    version_out,
)
from registry.knative.naming import agent_name_problem
from registry.models import Agent, Deployment, Version
from registry.problems import Problem
from registry.queries import ensure_namespace, load_agent
from registry.schemas import AgentCreate, AgentOut, AgentPatch, Page, VersionOut

router = APIRouter(tags=["agents"])


@router.get("/v1/agents", response_model=Page[AgentOut])
async def list_all_agents(
    session: Session,
    _: Admin,
    namespace: str | None = None,
    limit: int = LimitQuery,
    cursor: str | None = CursorQuery,
) -> Response:
    """Agents of every namespace (or one), ordered by namespace and name."""
    query = select(Agent)
    if namespace is not None:
        query = query.where(Agent.namespace == namespace)
    agents, next_cursor = await keyset_page(session, query, [Agent.namespace, Agent.name], cursor, limit)
    page: Page[AgentOut] = Page(items=await agents_out(session, agents), next_cursor=next_cursor)
    return json_response(page)


@router.get("/v1/namespaces/{namespace}/agents", response_model=Page[AgentOut])
async def list_agents(
    session: Session,
    admin: Admin,
    namespace: str = NamespacePath,
    limit: int = LimitQuery,
    cursor: str | None = CursorQuery,
) -> Response:
    return await list_all_agents(session, admin, namespace, limit, cursor)


@router.post("/v1/namespaces/{namespace}/agents", status_code=201, response_model=AgentOut)
async def create_agent(
    body: AgentCreate, session: Session, _: Admin, namespace: str = NamespacePath
) -> AgentOut:
    existing = await session.scalar(
        select(Agent.id).where(Agent.namespace == namespace, Agent.name == body.name)
    )
    if existing is not None:
        raise Problem(409, "Agent exists", f"{namespace}/{body.name} already exists", code="agent_exists")
    await ensure_namespace(session, namespace)
    agent = Agent(namespace=namespace, **body.model_dump())
    session.add(agent)
    await feed.bump(session)
    await session.commit()
    return agent_out(agent, None, None)


# Built once: the hot read skips statement construction (SQLAlchemy caches the compiled form).
_LATEST = (
    select(Version.version)
    .where(Version.agent_id == Agent.id)
    .order_by(Version.id.desc())
    .limit(1)
    .correlate(Agent)
    .scalar_subquery()
)
_AGENT_WITH_STATUS = (
    select(
        Agent.namespace,
        Agent.name,
        Agent.public,
        Agent.rate,
        Agent.burst,
        Agent.created_at,
        _LATEST.label("latest_version"),
        Deployment.phase,
        Deployment.url,
        Deployment.conditions,
        Deployment.last_error,
        Deployment.traffic,
    )
    .outerjoin(Deployment, Deployment.agent_id == Agent.id)
    .where(Agent.namespace == bindparam("namespace"), Agent.name == bindparam("name"))
)


@router.get("/v1/namespaces/{namespace}/agents/{name}", response_model=AgentOut)
async def get_agent(name: str, state: State, _: Admin, namespace: str = NamespacePath) -> Response:
    cache_key = f"{namespace}/{name}"
    cached = state.reads.get(cache_key)
    if cached is not None:
        return Response(cached, media_type="application/json")
    generation = state.reads.generation
    query = _AGENT_WITH_STATUS.params(namespace=namespace, name=name)
    async with state.db.sessions() as session:  # opened on a cache miss only
        row = (await session.execute(query)).first()  # one round trip, plain columns
    if row is None:
        raise Problem(404, "Agent not found", f"no agent {namespace}/{name}", code="agent_not_found")
    body = agent_out(row, row.latest_version, row if row.phase is not None else None)
    response = json_response(body)
    state.reads.put(cache_key, bytes(response.body), generation)
    return response


@router.patch("/v1/namespaces/{namespace}/agents/{name}", response_model=AgentOut)
async def patch_agent(
    name: str, body: AgentPatch, state: State, session: Session, admin: Admin, namespace: str = NamespacePath
) -> Response:
    """Change the public flag or the rate/burst override (send null to clear an override)."""
    agent = await load_agent(session, namespace, name, for_update=True)
    for field, value in body.model_dump(exclude_unset=True).items():
        if field == "public" and value is None:
            raise Problem(422, "Invalid request", "public must be true or false", code="invalid_request")
        setattr(agent, field, value)
    await feed.bump(session)
    await session.commit()
    return await get_agent(name, state, admin, namespace)


@router.delete("/v1/namespaces/{namespace}/agents/{name}", status_code=204)
async def delete_agent(
    name: str, state: State, session: Session, _: Admin, namespace: str = NamespacePath
) -> None:
    """Undeploy, then forget the agent and its versions; packages no other version uses are removed."""
    agent = await load_agent(session, namespace, name, for_update=True)
    shas = set(await session.scalars(select(Version.sha256).where(Version.agent_id == agent.id)))
    await state.reconciler.undeploy(namespace, name)
    await session.delete(agent)
    await feed.bump(session)
    await session.commit()
    still_used = set(await session.scalars(select(Version.sha256).where(Version.sha256.in_(shas))))
    for sha in shas - still_used:
        state.store.delete(sha)


@router.get("/v1/namespaces/{namespace}/agents/{name}/versions", response_model=Page[VersionOut])
async def list_versions(
    name: str,
    state: State,
    session: Session,
    _: Admin,
    namespace: str = NamespacePath,
    limit: int = LimitQuery,
    cursor: str | None = CursorQuery,
) -> Page[VersionOut]:
    """Versions oldest first."""
    agent = await load_agent(session, namespace, name)
    query = select(Version).where(Version.agent_id == agent.id)
    versions, next_cursor = await keyset_page(session, query, [Version.id], cursor, limit)
    return Page(
        items=[version_out(agent, v, state.store.url(v.sha256)) for v in versions], next_cursor=next_cursor
    )


@router.get("/v1/namespaces/{namespace}/agents/{name}/versions/{version}", response_model=VersionOut)
async def get_version(
    name: str, version: str, state: State, session: Session, _: Admin, namespace: str = NamespacePath
) -> VersionOut:
    agent = await load_agent(session, namespace, name)
    row = await session.scalar(
        select(Version).where(Version.agent_id == agent.id, Version.version == version)
    )
    if row is None:
        raise Problem(
            404, "Version not found", f"{namespace}/{name} has no version {version}", code="version_not_found"
        )
    return version_out(agent, row, state.store.url(row.sha256))


@router.post("/v1/namespaces/{namespace}/packages", status_code=201, response_model=VersionOut)
async def upload_package(
    state: State,
    session: Session,
    _: Admin,
    response: Response,
    file: Annotated[UploadFile, File(description="the .apkg built by `pixell build`")],
    name: Annotated[str | None, Form(description="agent name (default: agent.yaml name)")] = None,
    namespace: str = NamespacePath,
) -> VersionOut:
    """Validate an APKG with `runtime.apkg`, store it by sha256, register its version.

    201 for a new version, 200 when the same bytes are already that version, 409 when that
    version exists with different bytes, 422 (with the runtime's reason) for a bad package.
    """
    from runtime import apkg

    temp, sha256, size = await state.store.receive(file, state.settings.max_package_bytes)
    try:
        try:
            info = await run_in_threadpool(apkg.validate, temp)
        except apkg.ApkgError as exc:
            reason = str(exc).replace(str(temp), file.filename or "package")
            raise Problem(422, "Invalid package", reason, code=exc.code) from exc
        agent_name = name or info.manifest.name
        name_problem = agent_name_problem(agent_name)
        if name_problem:
            raise Problem(422, "Invalid agent name", name_problem, code="invalid_agent_name")
        version_name = info.manifest.version
        agent = await session.scalar(
            select(Agent).where(Agent.namespace == namespace, Agent.name == agent_name)
        )
        if agent is None:
            await ensure_namespace(session, namespace)
            agent = Agent(namespace=namespace, name=agent_name)
            session.add(agent)
            await feed.bump(session)
            await session.flush()
        existing = await session.scalar(
            select(Version).where(Version.agent_id == agent.id, Version.version == version_name)
        )
        if existing is not None:
            if existing.sha256 != sha256:
                raise Problem(
                    409,
                    "Version conflict",
                    f"{namespace}/{agent_name} {version_name} exists with different contents "
                    f"(sha256 {existing.sha256[:12]}...); bump metadata.version in agent.yaml",
                    code="version_conflict",
                )
            response.status_code = 200
            return version_out(agent, existing, state.store.url(sha256))
        version = Version(
            agent_id=agent.id,
            version=version_name,
            sha256=sha256,
            size=size,
            manifest=info.manifest.model_dump(mode="json"),
        )
        session.add(version)
        await session.flush()
        stored_now = state.store.adopt(temp, sha256)
        try:
            await session.commit()
        except BaseException:
            if stored_now:
                state.store.delete(sha256)
            raise
        return version_out(agent, version, state.store.url(sha256))
    finally:
        temp.unlink(missing_ok=True)
