"""`par registry serve`: the registry API server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from registry.settings import RegistrySettings

app = typer.Typer(help="The registry: agents, versions, keys, manifests.", no_args_is_help=True)


@app.command("serve")
def serve(
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="SQLite file, artifacts, admin.key (PAR_DATA_DIR)"
    ),
    port: int = typer.Option(8097, "--port", envvar="PORT", help="Port to listen on"),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on"),
) -> None:
    """Serve the registry API (OpenAPI at /docs). Prints a new admin key once, on first start."""
    import uvicorn

    from registry.app import create_app
    from registry.settings import RegistrySettings
    from runtime.jsonlog import configure

    configure("registry")
    settings = RegistrySettings(data_dir=data_dir) if data_dir else RegistrySettings()
    problem = asyncio.run(_database_problem(settings))
    if problem:  # said in one line here, rather than as the traceback of a failed start
        typer.echo(f"par registry serve: {problem}", err=True)
        raise typer.Exit(1)
    uvicorn.run(create_app(settings, port=port), host=host, port=port, log_config=None, access_log=False)


async def _database_problem(settings: RegistrySettings) -> str | None:
    """Why the database cannot be opened and migrated (unreachable, refused), or None."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from registry.db import open_database

    try:
        database = await open_database(settings)
    except (OSError, SQLAlchemyError) as exc:
        shown = make_url(settings.sqlalchemy_url()).render_as_string(hide_password=True)
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0] or type(exc).__name__
        return f"cannot open the database {shown}: {reason}"
    await database.close()
    return None
