"""`par logs AGENT`: an agent's output, as `kubectl logs` / `kn` show a pod's (issue 20 §1).

Each line carries the instance that printed it and its version: `[instance version] line`, or one
JSON object a line with `-o json`. `--follow` keeps streaming through scale to zero and from zero
(new instances join the stream) until Ctrl-C. The same command works against `par up` and a
Knative cluster: the registry reads the local files or the pods' logs.
"""

from __future__ import annotations

import enum
import json

import typer

from registry.commands.common import NamespaceOpt, client, reports_errors


class LogOutput(enum.StrEnum):
    text = "text"
    json = "json"


@reports_errors
def logs(
    agent: str = typer.Argument(..., help="The agent's name"),
    namespace: str = NamespaceOpt,
    version: str | None = typer.Option(None, "--version", help="Only this version's instances"),
    instance: str | None = typer.Option(None, "--instance", help="Only this instance (a pod on Knative)"),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep streaming new lines (Ctrl-C stops)"),
    since: str | None = typer.Option(None, "--since", help="Only lines newer than this: 10m, 1h, 90s"),
    tail: int | None = typer.Option(None, "--tail", min=0, help="Only the last N lines (then follow)"),
    timestamps: bool = typer.Option(False, "--timestamps", help="Start each line with its time (RFC 3339)"),
    output: LogOutput = typer.Option(LogOutput.text, "--output", "-o", help="text or json (NDJSON)"),
) -> None:
    """Print an agent's stdout and stderr, each line with its instance and version."""
    params: dict[str, object] = {"follow": str(follow).lower()}
    for key, value in (("version", version), ("instance", instance), ("since", since), ("tail", tail)):
        if value is not None:
            params[key] = value
    try:
        with client() as c:
            for raw in c.lines(f"/v1/namespaces/{namespace}/agents/{agent}/logs", params, follow=follow):
                if not raw.strip():
                    continue
                if output is LogOutput.json:
                    typer.echo(raw)
                    continue
                record = json.loads(raw)
                prefix = f"{record.get('time', '')} " if timestamps else ""
                where = f"[{record.get('instance')} {record.get('version')}]"
                typer.echo(f"{prefix}{where} {record.get('line', '')}")
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
