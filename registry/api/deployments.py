"""Deploying an agent: desired state (version, scaling, env), traffic splits, rollback, status."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from sqlalchemy import select

from registry import feed
from registry.api.deps import Admin, Session, State
from registry.api.views import NamespacePath, deployment_out
from registry.knative import admission, resources
from registry.models import Agent, Deployment, Trigger, Version
from registry.problems import Problem
from registry.queries import load_agent
from registry.reconciler import trigger_spec
from registry.schemas import DeploymentOut, DeployRequest, TrafficRequest
from registry.spec import Resources

router = APIRouter(tags=["deployments"])
HISTORY_DEPTH = 20


async def _apply(state: State, session: Session, agent: Agent, deployment: Deployment) -> DeploymentOut:
    """Hand the new desired state to the reconciler, then commit; a backend or database failure
    rolls the whole change back (the session is discarded without commit), and so does a
    refusal by Knative's rules (422 naming Knative's field)."""
    await feed.bump(session)  # its traffic tags may have changed: the gateway routes tag hosts
    await session.flush()
    try:
        await state.reconciler.apply(session, agent, deployment)
    except admission.Refused as exc:
        title = "Refused by Knative's rules"
        raise Problem(422, title, str(exc), code="invalid_service", field=exc.field) from None
    await session.commit()
    state.reconciler.follow(agent.namespace, agent.name, deployment.generation)
    return deployment_out(agent, deployment)


def _check_resources(state: State, asked: dict[str, dict[str, str]]) -> None:
    """422 naming the field for more than the platform's maximum or a request over its limit."""
    defaults, maximum = resources.defaults_from(state.settings), resources.maximum_from(state.settings)
    try:
        resources.check(Resources(**asked), defaults, maximum)
    except resources.Refused as exc:
        raise Problem(422, "Resources refused", str(exc), code=exc.code, field=exc.field) from None


def _push_history(deployment: Deployment) -> None:
    deployment.history = [*deployment.history, deployment.traffic][-HISTORY_DEPTH:]


async def _known_versions(session: Session, agent: Agent) -> list[str]:
    return list(await session.scalars(select(Version.version).where(Version.agent_id == agent.id)))


@router.get("/v1/namespaces/{namespace}/agents/{name}/deployment", response_model=DeploymentOut)
async def get_deployment(
    name: str, session: Session, _: Admin, namespace: str = NamespacePath
) -> DeploymentOut:
    agent = await load_agent(session, namespace, name)
    deployment = await session.get(Deployment, agent.id)
    if deployment is None:
        raise Problem(404, "Not deployed", f"{namespace}/{name} has no deployment", code="not_deployed")
    return deployment_out(agent, deployment)


@router.put("/v1/namespaces/{namespace}/agents/{name}/deployment", response_model=DeploymentOut)
async def deploy(
    name: str, body: DeployRequest, state: State, session: Session, _: Admin, namespace: str = NamespacePath
) -> DeploymentOut:
    """Route 100% of traffic to `version` (default: the latest) with the given scaling and env.

    Fields left out keep their current values. Readiness is followed in the background: poll
    GET .../deployment until `status.phase` is `ready` or `failed`.
    """
    agent = await load_agent(session, namespace, name, for_update=True)
    versions = await _known_versions(session, agent)
    if not versions:
        raise Problem(
            409, "No versions", f"upload a package for {namespace}/{name} first", code="no_versions"
        )
    version = body.version or await session.scalar(
        select(Version.version).where(Version.agent_id == agent.id).order_by(Version.id.desc()).limit(1)
    )
    if version not in versions:
        raise Problem(
            404, "Version not found", f"{namespace}/{name} has no version {version}", code="version_not_found"
        )
    deployment = await session.get(Deployment, agent.id)
    if deployment is None:
        deployment = Deployment(
            agent_id=agent.id,
            generation=0,
            history=[],
            traffic=[],
            revisions={},
            cluster_local=state.settings.cluster_local,
        )
        session.add(deployment)
        changes = body.model_dump(exclude={"version"})
    else:
        _push_history(deployment)
        changes = body.model_dump(exclude_unset=True, exclude={"version"})
    if changes.get("cluster_local") is None:
        changes.pop("cluster_local", None)
    asked = resources.merged(deployment.resources or {}, changes.pop("resources", None) or {})
    _check_resources(state, asked)
    for field, value in changes.items():
        setattr(deployment, field, value)
    deployment.resources = asked
    deployment.traffic = [{"version": version, "percent": 100, "tag": None}]
    deployment.generation += 1
    deployment.phase, deployment.last_error = "deploying", None
    return await _apply(state, session, agent, deployment)


@router.put("/v1/namespaces/{namespace}/agents/{name}/traffic", response_model=DeploymentOut)
async def set_traffic(
    name: str, body: TrafficRequest, state: State, session: Session, _: Admin, namespace: str = NamespacePath
) -> DeploymentOut:
    """Split traffic across uploaded versions (percents sum to 100; 422 otherwise)."""
    agent = await load_agent(session, namespace, name, for_update=True)
    deployment = await session.get(Deployment, agent.id)
    if deployment is None:
        raise Problem(
            409, "Not deployed", f"deploy {namespace}/{name} before splitting its traffic",
            code="not_deployed",
        )
    known = set(await _known_versions(session, agent))
    unknown = [t.version for t in body.traffic if t.version not in known]
    if unknown:
        raise Problem(
            422, "Unknown versions", f"{namespace}/{name} has no version {', '.join(unknown)}",
            code="unknown_versions",
        )
    _push_history(deployment)
    deployment.traffic = [t.model_dump() for t in body.traffic]
    deployment.generation += 1
    deployment.phase, deployment.last_error = "deploying", None
    return await _apply(state, session, agent, deployment)


@router.post("/v1/namespaces/{namespace}/agents/{name}/rollback", response_model=DeploymentOut)
async def rollback(
    name: str, state: State, session: Session, _: Admin, namespace: str = NamespacePath
) -> DeploymentOut:
    """Restore the traffic split in force before the last deploy/traffic change."""
    agent = await load_agent(session, namespace, name, for_update=True)
    deployment = await session.get(Deployment, agent.id)
    if deployment is None or not deployment.history:
        raise Problem(
            409, "Nothing to roll back", f"{namespace}/{name} has no earlier traffic",
            code="nothing_to_roll_back",
        )
    *rest, previous = deployment.history
    deployment.history = rest
    deployment.traffic = previous
    deployment.generation += 1
    deployment.phase, deployment.last_error = "deploying", None
    return await _apply(state, session, agent, deployment)


@router.get(
    "/v1/namespaces/{namespace}/agents/{name}/manifests",
    response_class=PlainTextResponse,
    responses={200: {"content": {"application/yaml": {}}}},
)
async def manifests(
    name: str, state: State, session: Session, _: Admin, namespace: str = NamespacePath
) -> PlainTextResponse:
    """The Knative objects for this agent (Service, its Triggers, the Broker) as one YAML stream."""
    from registry.knative import manifests as gen

    agent = await load_agent(session, namespace, name)
    deployment = await session.get(Deployment, agent.id)
    if deployment is None:
        raise Problem(
            409, "Not deployed", f"deploy {namespace}/{name} first (or use `par manifests PKG.apkg`)",
            code="not_deployed",
        )
    spec = await state.reconciler.spec(session, agent, deployment)
    triggers = await session.scalars(
        select(Trigger).where(Trigger.namespace == namespace, Trigger.subscriber_agent == name)
    )
    options = gen.options_from(state.settings)
    objects = gen.for_agent(spec, [trigger_spec(t) for t in triggers], options)
    return PlainTextResponse(gen.to_yaml(objects), media_type="application/yaml")
