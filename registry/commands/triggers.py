"""`par trigger create|list|delete`, with kn's flags (`--broker`, `--filter k=v`, `--sink`).

`--filter` alone gives Knative's exact attribute filter (`spec.filter.attributes`), as `kn` does.
`--filter-prefix`, `--filter-suffix`, `--filter-expr` (CESQL) and `--filters-file` (a YAML list
of Knative's `spec.filters`, for all/any/not) give `spec.filters`; then every `--filter` becomes
an `exact` entry of that list, and all entries must match.
"""

from __future__ import annotations

from pathlib import Path
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
    filter_prefix: list[str] = typer.Option(
        [], "--filter-prefix", help="ATTRIBUTE=PREFIX, e.g. type=order. (repeatable)"
    ),
    filter_suffix: list[str] = typer.Option(
        [], "--filter-suffix", help="ATTRIBUTE=SUFFIX, e.g. type=.created (repeatable)"
    ),
    filter_expr: list[str] = typer.Option(
        [], "--filter-expr", help="CloudEvents SQL, e.g. \"source LIKE '/shop/%'\" (repeatable)"
    ),
    filters_file: Path | None = typer.Option(
        None, "--filters-file", help="YAML/JSON list of Knative spec.filters (all/any/not...); - for stdin"
    ),
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
        "filters": filters_from_flags(filter_, filter_prefix, filter_suffix, filter_expr, filters_file),
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


def filters_from_flags(
    exact: list[str], prefix: list[str], suffix: list[str], expressions: list[str], path: Path | None
) -> dict[str, str] | list[dict[str, Any]]:
    """The request's `filters`: the exact-attribute mapping when only `--filter` is given (kn's
    form), else Knative's `spec.filters` list (the server checks it as Knative's webhook does)."""
    if not (prefix or suffix or expressions or path):
        return pairs(exact, "--filter")
    dialects: list[dict[str, Any]] = [
        {dialect: {key: value}}
        for dialect, given, flag in (("exact", exact, "--filter"), ("prefix", prefix, "--filter-prefix"),
                                     ("suffix", suffix, "--filter-suffix"))
        for key, value in pairs(given, flag).items()
    ]
    dialects += [{"cesql": expression} for expression in expressions]
    if path is not None:
        dialects += _filters_file(path)
    return dialects


def _filters_file(path: Path) -> list[dict[str, Any]]:
    import sys

    import yaml

    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
        loaded = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--filters-file") from None
    if not isinstance(loaded, list):
        raise typer.BadParameter("must hold a list (Knative spec.filters)", param_hint="--filters-file")
    return loaded


def describe_filters(filters: dict[str, str] | list[dict[str, Any]]) -> str:
    """`type=x` for exact attributes; `prefix(type=order.)`, `cesql(...)`, `not({...})` for the dialects."""
    import json

    def one(dialect: str, value: Any) -> str:
        if isinstance(value, str):
            return f"{dialect}({value})"
        if dialect in ("exact", "prefix", "suffix") and isinstance(value, dict):
            return f"{dialect}({','.join(f'{k}={v}' for k, v in value.items())})"
        return f"{dialect}({json.dumps(value, separators=(',', ':'))})"

    if isinstance(filters, dict):
        return ",".join(f"{k}={v}" for k, v in filters.items())
    return ",".join(one(dialect, value) for entry in filters for dialect, value in entry.items())


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
            ("FILTER", lambda t: describe_filters(t["filters"])),
        ),
    )


@app.command("delete")
@reports_errors
def delete(name: str, namespace: str = NamespaceOpt) -> None:
    """Delete a trigger."""
    with client() as c:
        c.json("DELETE", f"/v1/namespaces/{namespace}/triggers/{name}")
    typer.echo(f"Trigger '{name}' deleted in namespace '{namespace}'.")
