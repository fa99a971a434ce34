"""`par trigger create|list|delete`, with kn's flags (`--broker`, `--filter k=v`, `--sink`)."""

from __future__ import annotations

from typing import Any

import typer

from registry.commands.common import NamespaceOpt, Output, OutputOpt, client, pairs, render, reports_errors

app = typer.Typer(help="Triggers: deliver a broker's events to an agent.", no_args_is_help=True)


def parse_sink(sink: str) -> dict[str, str]:
    """kn's sink forms: `ksvc:NAME` or a bare `NAME` (a Knative Service, i.e. an agent), or a URL."""
    if sink.startswith(("http://", "https://")):
        return {"sink_uri": sink}
    kind, sep, name = sink.partition(":")
    if not sep:
        return {"sink_agent": sink}
    if kind != "ksvc":
        raise typer.BadParameter(f"{sink!r}: use ksvc:NAME, NAME or an http(s) URL", param_hint="--sink")
    return {"sink_agent": name}


@app.command("create")
@reports_errors
def create(
    name: str,
    sink: str = typer.Option(..., "--sink", "-s", help="ksvc:AGENT, AGENT or http(s)://URL"),
    broker: str = typer.Option("default", "--broker", help="Broker to subscribe to"),
    filter_: list[str] = typer.Option([], "--filter", help="ATTRIBUTE=VALUE exact match (repeatable)"),
    namespace: str = NamespaceOpt,
    ordering: str | None = typer.Option(None, "--ordering", help="ordered or unordered (Kafka broker)"),
    retry: int | None = typer.Option(None, "--retry", help="Delivery attempts after the first"),
    backoff_policy: str | None = typer.Option(None, "--backoff-policy", help="linear or exponential"),
    backoff_delay: str | None = typer.Option(None, "--backoff-delay", help="ISO-8601 duration, e.g. PT0.5S"),
    dead_letter_sink: str | None = typer.Option(
        None, "--dead-letter-sink", help="URL for undeliverable events"
    ),
    output: Output = OutputOpt,
) -> None:
    """Create a trigger delivering matching events on a broker to an agent or URL."""
    delivery: dict[str, Any] = {}
    if retry is not None:
        delivery["retry"] = retry
    if backoff_policy:
        delivery["backoffPolicy"] = backoff_policy
    if backoff_delay:
        delivery["backoffDelay"] = backoff_delay
    if dead_letter_sink:
        delivery["deadLetterSink"] = {"uri": dead_letter_sink}
    body = {
        "name": name,
        "broker": broker,
        "filters": pairs(filter_, "--filter"),
        "delivery": delivery,
        "ordering": ordering,
        **parse_sink(sink),
    }
    with client() as c:
        created = c.json("POST", f"/v1/namespaces/{namespace}/triggers", json=body)
    if output is Output.table:
        typer.echo(f"Trigger '{name}' successfully created in namespace '{namespace}'.")
    else:
        render(created, output, ())


@app.command("list")
@reports_errors
def list_triggers(namespace: str = NamespaceOpt, output: Output = OutputOpt) -> None:
    """List the triggers of a namespace."""
    with client() as c:
        items = c.pages(f"/v1/namespaces/{namespace}/triggers")
    render(
        items,
        output,
        (
            ("NAME", lambda t: t["name"]),
            ("BROKER", lambda t: t["broker"]),
            ("SINK", lambda t: f"ksvc:{t['sink_agent']}" if t["sink_agent"] else t["sink_uri"]),
            ("FILTER", lambda t: ",".join(f"{k}={v}" for k, v in t["filters"].items())),
        ),
    )


@app.command("delete")
@reports_errors
def delete(name: str, namespace: str = NamespaceOpt) -> None:
    """Delete a trigger."""
    with client() as c:
        c.json("DELETE", f"/v1/namespaces/{namespace}/triggers/{name}")
    typer.echo(f"Trigger '{name}' deleted in namespace '{namespace}'.")
