"""`par invoke NAME --data JSON`: call an agent through the gateway of the running `par up`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    import httpx


def invoke(
    name: str = typer.Argument(..., help="The agent to call"),
    data: str = typer.Option("{}", "--data", "-d", help="JSON body sent to the agent"),
    namespace: str = typer.Option("default", "--namespace", "-n", help="Namespace of the agent"),
    path: str = typer.Option("/invoke", "--path", help="Route on the agent"),
    timeout: float = typer.Option(300.0, "--timeout", help="Seconds to wait for the answer"),
    data_dir: Path = typer.Option(
        None, "--data-dir", envvar="PAR_DATA_DIR", help="Data folder of the running `par up` [~/.par]."
    ),
    output: str = typer.Option(
        "text", "--output", "-o", help="text: a failure is one line on stderr; json: the body on stdout"
    ),
) -> None:
    """POST JSON to an agent through the gateway (Host routing, `PAR_API_KEY` or the admin key);
    print the answer. `PAR_GATEWAY_URL` targets a gateway other than the local `par up`."""
    import json
    import os

    import httpx

    from gateway.hosts import DEFAULT_DOMAIN, agent_host
    from registry.discovery import locate

    found = locate(data_dir)
    if not found.gateway_url:
        typer.echo("Error: no running `par up` found; start one or set PAR_GATEWAY_URL", err=True)
        raise typer.Exit(1)
    try:
        body = json.loads(data)
    except ValueError as exc:
        typer.echo(f"Error: --data is not JSON: {exc}", err=True)
        raise typer.Exit(2) from None
    domain = found.domain or os.environ.get("PAR_GATEWAY_DOMAIN", DEFAULT_DOMAIN)
    headers = {"Host": agent_host(name, namespace, domain)}
    if found.api_key:
        headers["Authorization"] = f"Bearer {found.api_key}"
    try:
        response = httpx.post(f"{found.gateway_url}{path}", json=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        typer.echo(f"Error: gateway {found.gateway_url} unreachable: {exc}", err=True)
        raise typer.Exit(1) from None
    failed = response.status_code >= 400
    if not failed or output == "json":
        typer.echo(response.text)
    if failed:
        typer.echo(f"Error: {problem_line(response)}", err=True)
        raise typer.Exit(1)


def problem_line(response: httpx.Response) -> str:
    """`code: detail (HTTP 404)` from a problem+json body; the status and body's start otherwise."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and (body.get("code") or body.get("detail")):
        said = ": ".join(str(body[k]) for k in ("code", "detail") if body.get(k))
    else:
        said = " ".join(response.text.split())[:200] or response.reason_phrase
    return f"{said} (HTTP {response.status_code})"
