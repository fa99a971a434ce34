"""`par manifests PKG.apkg|NAME`: the Knative YAML of an agent, ready for `kubectl apply -f -`.

For a package file it works offline: the package is validated by `runtime.apkg`, and PACKAGE_URL
points at where the registry will serve it (`--artifact-base`, default PAR_PUBLIC_URL or
PAR_REGISTRY_URL). For a NAME the registry renders the deployed agent, with its triggers.
"""

from __future__ import annotations

from pathlib import Path

import typer

from registry.commands.common import NamespaceOpt, client, reports_errors


@reports_errors
def manifests(
    target: str = typer.Argument(..., help="An .apkg file (offline) or a registered agent's name"),
    namespace: str = NamespaceOpt,
    name: str | None = typer.Option(None, help="Agent name for a package (default: agent.yaml name)"),
    min_scale: int = typer.Option(0, "--min-scale", min=0),
    max_scale: int | None = typer.Option(None, "--max-scale", min=0),
    target_concurrency: int | None = typer.Option(None, "--target", min=1),
    concurrency: int = typer.Option(0, "--concurrency", min=0, help="containerConcurrency (0 = unlimited)"),
    broker: str | None = typer.Option("default", "--broker", help="K_SINK broker ('' for none)"),
    cluster_local: bool = typer.Option(False, "--cluster-local", help="networking.knative.dev/visibility"),
    image: str | None = typer.Option(None, "--image", help="Runtime image (default PAR_RUNTIME_IMAGE)"),
    artifact_base: str | None = typer.Option(
        None, "--artifact-base", help="Registry URL runtimes download from"
    ),
    grpc: bool = typer.Option(
        False, "--grpc", help="Also the {agent}-grpc Service: pixell.agent.AgentService on an h2c port"
    ),
) -> None:
    """Print the Knative Service, Broker and Triggers for a package or a deployed agent.

    Offline, the objects are checked against Knative's webhook rules first (registry.knative.admission),
    so what is printed is what a cluster accepts."""
    path = Path(target)
    if not (path.suffix == ".apkg" or path.is_file()):
        if grpc:
            raise typer.BadParameter("--grpc needs a package file (PATH.apkg)", param_hint="--grpc")
        with client() as c:
            typer.echo(
                c.request("GET", f"/v1/namespaces/{namespace}/agents/{target}/manifests").text, nl=False
            )
        return
    import dataclasses

    from registry.client import DEFAULT_URL
    from registry.knative import admission
    from registry.knative import manifests as gen
    from registry.knative.naming import revision_name, traffic_tag
    from registry.settings import RegistrySettings
    from registry.spec import DeploymentSpec, Scaling, VersionTarget
    from runtime import apkg

    if not path.is_file():
        raise typer.BadParameter(f"{path}: no such file", param_hint="TARGET")
    try:
        info = apkg.validate(path)
    except apkg.ApkgError as exc:
        typer.echo(f"Error: invalid package ({exc.code}): {exc}", err=True)
        raise typer.Exit(1) from None
    settings = RegistrySettings()
    agent = name or info.manifest.name
    version = info.manifest.version
    base = (artifact_base or settings.public_url or settings.registry_url or DEFAULT_URL).rstrip("/")
    spec = DeploymentSpec(
        namespace=namespace,
        agent=agent,
        versions=(
            VersionTarget(
                version=version,
                revision=revision_name(agent, version),
                percent=100,
                sha256=info.sha256,
                artifact_url=f"{base}/v1/artifacts/{info.sha256}",
                tag=traffic_tag(version),
            ),
        ),
        scaling=Scaling(
            min_scale=min_scale,
            max_scale=max_scale,
            target=target_concurrency,
            container_concurrency=concurrency,
        ),
        broker=broker or None,
        k_sink=settings.broker_ingress_url.format(namespace=namespace, broker=broker) if broker else None,
        cluster_local=cluster_local,
    )
    options = gen.options_from(settings)
    if image:
        options = dataclasses.replace(options, image=image)
    # Offline there is no record of earlier revisions: the name carries the template's digest, so
    # re-applying the version with another setting is a new revision, the same settings the same one.
    named = revision_name(agent, version, gen.template_digest(gen.service(spec, options)))
    spec = spec.model_copy(update={"versions": (spec.versions[0].model_copy(update={"revision": named}),)})
    objects = gen.for_agent(spec, (), options)
    if grpc:
        from registry.knative.grpc_variant import grpc_service

        objects.append(grpc_service(spec, options))
    try:
        admission.check(objects, admission.limits_from(settings))
    except admission.Refused as exc:
        typer.echo(f"Error: Knative would refuse this: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(gen.to_yaml(objects), nl=False)
