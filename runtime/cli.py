"""`par runtime ...` commands: serve and prepare a single agent package.

Only typer is imported here; the runtime itself is imported inside the commands.
"""

from pathlib import Path

import typer

app = typer.Typer(help="Run one agent package (the single-agent runtime).", no_args_is_help=True)


@app.command()
def serve(
    package: str = typer.Argument(
        None, help="APKG file, prepared folder or agent folder (default: AGENT_PACKAGE_PATH)"
    ),
    port: int = typer.Option(None, "--port", "-p", help="Port to bind (default: $PORT or 8080)."),
    host: str = typer.Option(None, "--host", help="Address to bind (default: 0.0.0.0)."),
) -> None:
    """Serve one agent: /invoke, CloudEvents on /, A2A, its REST routes and UI, /health and /metrics."""
    from runtime.server import run

    raise typer.Exit(run(package, port=port, host=host))


@app.command()
def prepare(
    package: Path = typer.Argument(..., help="The APKG file to prepare."),
    into: Path = typer.Option(
        ..., "--into", help="Folder to prepare into (created; reused when up to date)."
    ),
    sha256: str = typer.Option(
        None, "--sha256", envvar="PACKAGE_SHA256", help="Refuse unless the APKG has this SHA-256."
    ),
) -> None:
    """Extract a package and install its dependencies ahead of time (for image builds)."""
    from rich.console import Console

    from runtime.apkg import ApkgError
    from runtime.prepare import prepare as do_prepare

    console = Console(stderr=True, soft_wrap=True)
    try:
        if console.is_terminal:
            with console.status("preparing") as status:

                def progress(line: str) -> None:
                    status.update(line.strip()[:100])
                    console.log(line)

                prepared = do_prepare(package, into, expected_sha256=sha256, progress=progress)
        else:  # a log or the platform reading it: whole lines, no spinner, time or source columns
            prepared = do_prepare(package, into, expected_sha256=sha256, progress=console.out)
    except ApkgError as exc:
        console.print(f"[red]package refused ({exc.code}):[/] {exc}")
        raise typer.Exit(2) from None
    manifest = prepared.manifest
    console.print(f"[green]prepared[/] {manifest.name} {manifest.version} in {into}")
    for conflict in prepared.conflicts:
        console.print(f"[yellow]conflict:[/] {conflict}")
