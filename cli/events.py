"""`par events`: the platform's events as a user sees them; `par events dlq` finds `par up`'s store."""

from __future__ import annotations

import typer

from eventing.dlq_cli import build


def _locate() -> tuple[str | None, str | None]:
    """The running `par up`'s eventing URL and its admin token (from its data folder)."""
    from cli.up.platform import EVENTING_TOKEN_FILE
    from registry.discovery import find

    directory, info = find()
    try:
        token = (directory / EVENTING_TOKEN_FILE).read_text().strip() or None
    except OSError:
        token = None
    return (info.eventing_url if info else None), token


app = typer.Typer(help="Events on the platform's brokers.", no_args_is_help=True)
app.add_typer(build(_locate, serve=False), name="dlq")
