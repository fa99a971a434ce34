"""The `par` command line. Heavy imports stay inside commands so that `par --help` and
`par runtime serve` start fast."""

import typer

from cli.env import env
from cli.events import app as events_app
from cli.invoke import invoke
from cli.migrate import migrate
from cli.status import status
from cli.up.command import up
from eventing.cli import app as eventing_app
from gateway.cli import app as gateway_app
from registry.commands import register as register_registry_commands
from runtime.cli import app as runtime_app

app = typer.Typer(help="PAR: run AI agent packages serverlessly.", no_args_is_help=True)
app.add_typer(runtime_app, name="runtime")
app.add_typer(eventing_app, name="eventing")
app.add_typer(events_app, name="events")
app.add_typer(gateway_app, name="gateway")
app.command("up")(up)
app.command("invoke")(invoke)
app.command("env")(env)
app.command("migrate")(migrate)
app.command("status")(status)
register_registry_commands(app)


def main() -> None:
    app()
