"""`par status`: the running platform's parts and its agents as tables, like `kn service list`.

Parts come from the `platform.json` a `par up` writes (each probed on its own health route);
agents from the registry (with the admin key) and, on one machine, their instances from
serving's loopback `/status`. With PAR_REGISTRY_URL set, the agents of that registry alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import typer

from registry.commands.agents import serving_versions
from registry.commands.common import Output, OutputOpt, render, reports_errors

PART_COLUMNS = (
    ("PART", lambda p: p["part"]),
    ("URL", lambda p: p["url"]),
    ("STATE", lambda p: p["state"]),
)
AGENT_COLUMNS = (
    ("NAMESPACE", lambda a: a["namespace"]),
    ("NAME", lambda a: a["name"]),
    ("VERSION", lambda a: serving_versions(a) or a["latest_version"]),  # what serves, else the upload
    ("READY", lambda a: a["status"]["phase"]),
    ("TRAFFIC", lambda a: a.get("traffic")),
    ("INSTANCES", lambda a: a.get("instances")),
    ("URL", lambda a: a["status"]["url"]),
    ("MESSAGE", lambda a: a["status"].get("message")),
)


def _probe(url: str) -> str:
    try:
        response = httpx.get(url, timeout=3.0)
    except httpx.HTTPError as exc:
        return f"down ({type(exc).__name__})"
    return "up" if response.status_code == 200 else f"not ready ({response.status_code})"


def _instances(local_gateway: str) -> dict[tuple[str, str], dict[str, Any]]:
    try:
        statuses = httpx.get(f"{local_gateway}/status", timeout=3.0).json()
    except (httpx.HTTPError, ValueError):
        return {}
    return {(s["namespace"], s["name"]): s for s in statuses}


@reports_errors
def status(
    data_dir: Path = typer.Option(
        None, "--data-dir", envvar="PAR_DATA_DIR", help="The platform's data folder [~/.par]."
    ),
    output: Output = OutputOpt,
) -> None:
    """Show the running platform: its parts, then every agent with its status and instances."""
    from registry.client import RegistryClient
    from registry.discovery import find, locate

    directory, info = find(data_dir)
    endpoint = locate(directory)
    if info is None and endpoint.registry_url is None:
        typer.echo(f"par status: no par up running on {directory} (start one: par up)", err=True)
        raise typer.Exit(1)
    parts = []
    if info is not None:
        probed = [  # part, its URL, the route that says whether it serves
            ("gateway", info.gateway_url, "/readyz"),
            ("console", info.registry_url + "/console", "/login"),
            ("registry", info.registry_url, "/readyz"),
            ("eventing", info.eventing_url, "/readyz"),
            ("local-gateway", info.local_gateway_url, "/status"),
        ]
        parts = [{"part": p, "url": u, "state": _probe(u + route)} for p, u, route in probed]
    assert endpoint.registry_url is not None
    with RegistryClient(endpoint.registry_url, endpoint.api_key) as client:
        agents = client.pages("/v1/agents")
        running = _instances(info.local_gateway_url) if info is not None else {}
        for agent in agents:
            observed = running.get((agent["namespace"], agent["name"]))
            if observed is not None:
                agent["traffic"] = " ".join(f"{t['version']}={t['percent']}%" for t in observed["traffic"])
                agent["instances"] = observed["instances"]
    if output is not Output.table:
        render({"parts": parts, "agents": agents}, output, ())
        return
    if parts:
        render(parts, output, PART_COLUMNS)
        typer.echo("")
    if agents:
        render(agents, output, AGENT_COLUMNS)
    else:
        typer.echo("No agents yet: par deploy my-agent-0.1.0.apkg")
