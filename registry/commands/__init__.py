"""The registry's `par` commands; `register(app)` attaches them to the root CLI.

Every module here imports only typer at load time; clients, rich and the server come inside the
command functions so that `par --help` and `par runtime serve` stay fast.
"""

from __future__ import annotations

import typer

from registry.commands import agents, deploy, keys, logs, manifests, serve, triggers


def register(app: typer.Typer) -> None:
    app.add_typer(serve.app, name="registry")
    app.command("deploy")(deploy.deploy)
    app.add_typer(agents.app, name="agents")
    app.command("versions")(agents.versions)
    app.command("traffic")(agents.traffic)
    app.command("rollback")(agents.rollback)
    app.add_typer(triggers.app, name="trigger")
    app.add_typer(keys.app, name="keys")
    app.command("manifests")(manifests.manifests)
    app.command("logs")(logs.logs)
