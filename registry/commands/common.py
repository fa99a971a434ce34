"""What every registry command shares: options, the client, output formats, error reporting."""

from __future__ import annotations

import enum
import functools
import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer

if TYPE_CHECKING:
    from registry.client import RegistryClient

P = ParamSpec("P")
R = TypeVar("R")


class Output(enum.StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


NamespaceOpt = typer.Option("default", "--namespace", "-n", help="Namespace of the agent")
OutputOpt = typer.Option(Output.table, "--output", "-o", help="table, json or yaml")


def client() -> RegistryClient:
    """A client for PAR_REGISTRY_URL with PAR_API_KEY, else the running `par up` (see client.py)."""
    from registry.client import RegistryClient

    return RegistryClient.from_settings()


def reports_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn registry errors into one line on stderr and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from registry.client import RegistryError

        try:
            return func(*args, **kwargs)
        except RegistryError as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(1) from None

    return wrapper


def render(data: Any, output: Output, columns: Sequence[tuple[str, Callable[[Any], Any]]]) -> None:
    """Print `data` (a dict or a list of dicts) as JSON, YAML or a table of `columns`."""
    if output is Output.json:
        typer.echo(json.dumps(data, indent=2))
        return
    if output is Output.yaml:
        import yaml

        typer.echo(yaml.safe_dump(data, sort_keys=False).rstrip())
        return
    from rich.console import Console
    from rich.table import Table

    rows = data if isinstance(data, list) else [data]
    table = Table(box=None, pad_edge=False)
    for title, _ in columns:
        table.add_column(title)
    for row in rows:
        table.add_row(*("" if (v := get(row)) is None else str(v) for _, get in columns))
    # Piped output keeps whole values (no terminal width to fit).
    Console(file=sys.stdout, width=None if sys.stdout.isatty() else 10_000).print(table)


def pairs(values: Sequence[str], what: str) -> dict[str, str]:
    """`["a=1", "b=2"]` -> `{"a": "1", "b": "2"}`, refusing items without `=`."""
    parsed: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=what)
        parsed[key] = value
    return parsed
