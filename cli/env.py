"""`par env`: the running platform's URLs, its key and `par` itself as `export` lines, so that
`eval "$(par env)"` puts them in a shell (as `minikube docker-env` or `kind` print theirs)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer


def env(
    data_dir: Path = typer.Option(
        None, "--data-dir", envvar="PAR_DATA_DIR", help="Data folder of the running `par up` [~/.par]."
    ),
) -> None:
    """Print `export` lines: PAR_REGISTRY_URL, PAR_API_KEY, PAR_GATEWAY_URL, PAR_BROKER_URL and PATH."""
    from registry.discovery import find, read_admin_key

    directory, info = find(data_dir)
    if info is None:
        typer.echo(f"Error: no running `par up` on {directory}; start one with `par up`", err=True)
        raise typer.Exit(1)
    values = {
        "PAR_REGISTRY_URL": info.registry_url,
        "PAR_API_KEY": read_admin_key(directory) or "",
        "PAR_GATEWAY_URL": info.gateway_url,
        "PAR_BROKER_URL": f"{info.eventing_url}/default/default",
        "PAR_DATA_DIR": str(directory),
    }
    for name, value in values.items():
        typer.echo(f"export {name}={shlex.quote(value)}")
    typer.echo(f'export PATH={shlex.quote(str(Path(sys.executable).parent))}:"$PATH"')
