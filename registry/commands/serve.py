"""`par registry serve`: the registry API server."""

from __future__ import annotations

from pathlib import Path

import typer

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
    uvicorn.run(create_app(settings, port=port), host=host, port=port, log_config=None, access_log=False)
