"""`par deploy PKG.apkg`: upload, register, deploy, then follow the rollout until Ready or failed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from registry.commands.common import NamespaceOpt, client, pairs, reports_errors

RESOURCES = ("cpu", "memory")

if TYPE_CHECKING:
    from rich.console import Console

    from registry.client import RegistryClient


@reports_errors
def deploy(
    package: Path = typer.Argument(
        ..., exists=True, dir_okay=False, readable=True, help="The .apkg to deploy"
    ),
    name: str | None = typer.Option(None, help="Agent name (default: the package's agent.yaml name)"),
    namespace: str = NamespaceOpt,
    min_scale: int | None = typer.Option(None, "--min-scale", help="Minimum instances (0 = scale to zero)"),
    max_scale: int | None = typer.Option(None, "--max-scale", help="Maximum instances"),
    target: int | None = typer.Option(None, "--target", help="Concurrent requests per instance to aim for"),
    concurrency: int | None = typer.Option(None, "--concurrency", help="Hard limit of requests per instance"),
    request_timeout: int | None = typer.Option(
        None, "--request-timeout", help="Per-request timeout, seconds"
    ),
    env: list[str] = typer.Option([], "--env", "-e", help="KEY=VALUE for the agent (repeatable)"),
    limit: list[str] = typer.Option(
        [], "--limit", help="Resource limits, e.g. 'cpu=500m,memory=256Mi' ('memory-' unsets; repeatable)"
    ),
    request: list[str] = typer.Option(
        [], "--request", help="Resource requests, e.g. 'cpu=100m,memory=128Mi' ('cpu-' unsets; repeatable)"
    ),
    cluster_local: bool | None = typer.Option(
        None, "--cluster-local/--public-route", help="Knative visibility"
    ),
    broker: str | None = typer.Option(
        None, "--broker", help="Broker the agent's events go to (its K_SINK; first deploy: 'default')"
    ),
    no_broker: bool = typer.Option(
        False, "--no-broker", help="No K_SINK broker (the agent emits no events; Knative Eventing not needed)"
    ),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the rollout until Ready or failed"),
    wait_timeout: float = typer.Option(300.0, "--wait-timeout", help="Seconds to follow the rollout"),
) -> None:
    """Upload PACKAGE, register its version and route all traffic to it."""
    from rich.console import Console

    # Off a terminal (CI logs, pipes) progress lines stay whole: no wrapping at an assumed width.
    console = Console(stderr=True, soft_wrap=True)
    body: dict[str, object] = {
        key: value
        for key, value in {
            "min_scale": min_scale,
            "max_scale": max_scale,
            "target": target,
            "container_concurrency": concurrency,
            "timeout_seconds": request_timeout,
            "cluster_local": cluster_local,
        }.items()
        if value is not None
    }
    if broker is not None and no_broker:
        raise typer.BadParameter("--broker and --no-broker exclude each other", param_hint="--no-broker")
    if broker is not None or no_broker:
        body["broker"] = None if no_broker else broker
    if env:
        body["env"] = pairs(env, "--env")
    if limit or request:
        body["resources"] = {
            "limits": resource_flags(limit, "--limit"),
            "requests": resource_flags(request, "--request"),
        }
    from registry.client import RegistryError

    with client() as c:
        size_kb = package.stat().st_size / 1024
        with console.status(f"Uploading {package.name} ({size_kb:,.0f} KiB)..."):
            uploaded = c.upload(namespace, package, name)
        version = uploaded.json()
        verb = "registered" if uploaded.status_code == 201 else "already registered"
        console.print(
            f"[green]✓[/] {version['agent']} {version['version']} {verb} (sha256 {version['sha256'][:12]})"
        )
        body["version"] = version["version"]
        agent_path = f"/v1/namespaces/{namespace}/agents/{version['agent']}"
        try:
            deployment = c.json("PUT", f"{agent_path}/deployment", json=body)
        except RegistryError:
            if uploaded.status_code == 201:
                _forget_if_only(c, agent_path, version["version"], console)
            raise
        console.print(f"[green]✓[/] deployment generation {deployment['generation']} applied")
        if wait:
            deployment = _follow(c, agent_path, deployment, wait_timeout, console)
    status = deployment["status"]
    if status["phase"] == "failed":
        typer.echo(f"Error: {version['agent']} failed to become ready: {status.get('message')}", err=True)
        raise typer.Exit(1)
    if status["phase"] == "ready":
        typer.echo(f"{version['agent']} {version['version']} is ready at {status['url']}")
    else:
        reason = status.get("message") or "still waiting"
        typer.echo(f"{version['agent']} {version['version']}: {status['phase']} ({reason})")
        if wait:
            raise typer.Exit(1)


def _forget_if_only(c: RegistryClient, agent_path: str, version: str, console: Console) -> None:
    """The deploy failed: an agent this command registered just now (its only version, never
    deployed) is removed again, so that a failed `par deploy` leaves nothing half-registered."""
    from registry.client import RegistryError

    try:
        agent = c.json("GET", agent_path)
        versions = c.pages(f"{agent_path}/versions")
        if agent["status"]["phase"] == "absent" and [v["version"] for v in versions] == [version]:
            c.request("DELETE", agent_path)
            console.print(f"[yellow]![/] {agent['name']} {version} unregistered again: its deploy failed")
    except RegistryError:
        pass  # the deploy's own error is the one to report


def resource_flags(values: list[str], flag: str) -> dict[str, str | None]:
    """kn's `--limit`/`--request`: `cpu=500m,memory=256Mi`, repeatable; `memory-` removes the value
    (back to the platform's default). Quantities are checked by the registry (422 naming them)."""
    parsed: dict[str, str | None] = {}
    for item in (part.strip() for value in values for part in value.split(",")):
        if item.endswith("-") and "=" not in item:
            name, value = item[:-1], None
        else:
            name, sep, value = item.partition("=")
            if not sep or not value:
                raise typer.BadParameter(f"{item!r} is not RESOURCE=QUANTITY or RESOURCE-", param_hint=flag)
        if name not in RESOURCES:
            raise typer.BadParameter(f"{name!r}: resources are {' and '.join(RESOURCES)}", param_hint=flag)
        parsed[name] = value
    return parsed


def _follow(
    c: RegistryClient, agent_path: str, deployment: dict[str, Any], wait_timeout: float, console: Console
) -> dict[str, Any]:
    """Poll the deployment, printing each condition change and each progress message (package
    preparation: download, dependency install), until ready, failed or the timeout."""
    generation, seen = deployment["generation"], set[tuple[str, str, str | None]]()
    said: str | None = None
    deadline = time.monotonic() + wait_timeout
    with console.status("Waiting for the agent to become ready...") as spinner:
        while True:
            status = deployment["status"]
            for condition in status.get("conditions", []):
                key = (condition["type"], condition["status"], condition.get("reason"))
                if key not in seen:
                    seen.add(key)
                    reason = f" ({condition['reason']})" if condition.get("reason") else ""
                    console.print(f"  {condition['type']}: {condition['status']}{reason}")
            if status["phase"] in ("ready", "failed") or time.monotonic() > deadline:
                return deployment
            message = status.get("message")
            if message and message != said and status["phase"] == "deploying":
                console.print(f"  [dim]{message}[/]", highlight=False)
                said = message
            spinner.update(f"Waiting for the agent to become ready ({status['phase']})...")
            time.sleep(0.5)
            deployment = c.json("GET", f"{agent_path}/deployment")
            if deployment["generation"] != generation:
                console.print("[yellow]![/] a newer deployment replaced this one")
                return deployment
