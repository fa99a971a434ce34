"""`par agents list|get|delete`, `par versions`, `par traffic`, `par rollback`."""

from __future__ import annotations

from typing import Any

import typer

from registry.commands.common import NamespaceOpt, Output, OutputOpt, client, pairs, render, reports_errors

app = typer.Typer(help="Agents registered in the registry.", no_args_is_help=True)

AGENT_COLUMNS = (
    ("NAMESPACE", lambda a: a["namespace"]),
    ("NAME", lambda a: a["name"]),
    ("VERSION", lambda a: serving_versions(a)),
    ("LATEST", lambda a: a["latest_version"]),
    ("STATUS", lambda a: a["status"]["phase"]),
    ("URL", lambda a: a["status"]["url"]),
    ("PUBLIC", lambda a: a["public"]),
)
TRAFFIC_COLUMNS = (
    ("VERSION", lambda t: t["version"]),
    ("PERCENT", lambda t: t["percent"]),
    ("REVISION", lambda t: t["revision"]),
    ("TAG", lambda t: t["tag"]),
    ("URL", lambda t: t.get("url")),
)


def serving_versions(agent: dict[str, Any]) -> str | None:
    """The version(s) taking the traffic: `0.1.0`, or `0.1.0 90%, 0.2.0 10%` while split."""
    serving = agent.get("serving") or []
    if len(serving) == 1:
        return str(serving[0]["version"])
    return ", ".join(f"{t['version']} {t['percent']}%" for t in serving) or None


def _agent_path(namespace: str, name: str) -> str:
    return f"/v1/namespaces/{namespace}/agents/{name}"


@app.command("list")
@reports_errors
def list_agents(
    namespace: str = NamespaceOpt,
    all_namespaces: bool = typer.Option(False, "--all-namespaces", "-A", help="Agents of every namespace"),
    output: Output = OutputOpt,
) -> None:
    """List agents with their latest version and status."""
    with client() as c:
        items = c.pages("/v1/agents", None if all_namespaces else {"namespace": namespace})
    render(items, output, AGENT_COLUMNS)


@app.command("get")
@reports_errors
def get_agent(name: str, namespace: str = NamespaceOpt, output: Output = OutputOpt) -> None:
    """Show one agent (and its deployment, when deployed)."""
    with client() as c:
        agent = c.json("GET", _agent_path(namespace, name))
        if agent["status"]["phase"] != "absent":
            agent["deployment"] = c.json("GET", _agent_path(namespace, name) + "/deployment")
    render(agent, output, AGENT_COLUMNS)
    if output is Output.table and "deployment" in agent:
        render(agent["deployment"]["traffic"], output, TRAFFIC_COLUMNS)
        typer.echo(f"resources: {describe_resources(agent['deployment'].get('resources') or {})}")
        message = agent["status"].get("message")
        if message:
            typer.echo(f"message: {message}")


def describe_resources(resources: dict[str, dict[str, str]]) -> str:
    """`requests cpu=100m; limits memory=256Mi`, or that the platform's defaults apply."""
    parts = [
        f"{kind} " + ", ".join(f"{name}={value}" for name, value in sorted(values.items()))
        for kind in ("requests", "limits")
        if (values := resources.get(kind))
    ]
    return "; ".join(parts) + (" (the rest: platform defaults)" if parts else "platform defaults")


@app.command("update")
@reports_errors
def update_agent(
    name: str,
    namespace: str = NamespaceOpt,
    public: bool | None = typer.Option(None, "--public/--private", help="Callable without a key (gateway)"),
    rate: float | None = typer.Option(None, "--rate", help="Requests/s per key on this agent"),
    burst: int | None = typer.Option(None, "--burst", help="Burst per key on this agent"),
    clear_limits: bool = typer.Option(False, "--clear-limits", help="Drop the rate/burst override"),
    output: Output = OutputOpt,
) -> None:
    """Change an agent's gateway policy: public flag and rate-limit override."""
    body: dict[str, Any] = {"rate": None, "burst": None} if clear_limits else {}
    body.update({k: v for k, v in {"public": public, "rate": rate, "burst": burst}.items() if v is not None})
    if not body:
        raise typer.BadParameter("give --public/--private, --rate, --burst or --clear-limits")
    with client() as c:
        agent = c.json("PATCH", _agent_path(namespace, name), json=body)
    render(agent, output, (*AGENT_COLUMNS, ("RATE", lambda a: a["rate"]), ("BURST", lambda a: a["burst"])))


@app.command("delete")
@reports_errors
def delete_agent(name: str, namespace: str = NamespaceOpt) -> None:
    """Undeploy an agent and forget it with all its versions."""
    with client() as c:
        c.json("DELETE", _agent_path(namespace, name))
    typer.echo(f"Agent '{name}' deleted in namespace '{namespace}'.")


@reports_errors
def versions(name: str, namespace: str = NamespaceOpt, output: Output = OutputOpt) -> None:
    """List an agent's uploaded versions, oldest first."""
    with client() as c:
        items = c.pages(_agent_path(namespace, name) + "/versions")
    render(
        items,
        output,
        (
            ("VERSION", lambda v: v["version"]),
            ("SHA256", lambda v: v["sha256"][:12]),
            ("SIZE", lambda v: v["size"]),
            ("CREATED", lambda v: v["created_at"]),
        ),
    )


@reports_errors
def traffic(
    name: str,
    split: list[str] = typer.Argument(..., help="VERSION=PERCENT pairs summing to 100: 0.1.0=90 0.2.0=10"),
    namespace: str = NamespaceOpt,
    output: Output = OutputOpt,
) -> None:
    """Split an agent's traffic across its versions."""
    targets: list[dict[str, Any]] = []
    for version, percent in pairs(split, "SPLIT").items():
        if not percent.isdigit():
            raise typer.BadParameter(f"{version}={percent}: the percent must be a whole number")
        targets.append({"version": version, "percent": int(percent)})
    with client() as c:
        deployment = c.json("PUT", _agent_path(namespace, name) + "/traffic", json={"traffic": targets})
    render(deployment["traffic"] if output is Output.table else deployment, output, TRAFFIC_COLUMNS)


@reports_errors
def rollback(name: str, namespace: str = NamespaceOpt, output: Output = OutputOpt) -> None:
    """Restore the traffic split in force before the last deploy or traffic change."""
    with client() as c:
        deployment = c.json("POST", _agent_path(namespace, name) + "/rollback")
    render(deployment["traffic"] if output is Output.table else deployment, output, TRAFFIC_COLUMNS)
