"""`par runtime ...` commands: serve and prepare a single agent package."""

import typer

app = typer.Typer(help="Run one agent package (the single-agent runtime).", no_args_is_help=True)
