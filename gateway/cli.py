"""`par gateway ...` commands: the auth, authz and rate-limit gateway."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from gateway.asgi import GatewayApp
    from gateway.settings import GatewaySettings

app = typer.Typer(help="The gateway: ext_authz service or local ingress proxy.", no_args_is_help=True)


@app.command()
def serve(
    mode: Annotated[
        str | None,
        typer.Option(help="authz (Envoy ext_authz service) or proxy (local ingress) [PAR_GATEWAY_MODE]"),
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Bind address [PAR_GATEWAY_HOST, default 127.0.0.1]")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port [PORT, default 8080]")] = None,
    policy_file: Annotated[
        str | None,
        typer.Option(help="Snapshot-shaped JSON policy instead of the registry [PAR_GATEWAY_POLICY_FILE]"),
    ] = None,
    registry_url: Annotated[
        str | None, typer.Option(help="Registry to poll for keys [PAR_REGISTRY_URL]")
    ] = None,
) -> None:
    """Serve the gateway (keys from the registry at PAR_REGISTRY_URL, or a policy file)."""
    import uvicorn
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from gateway.settings import GatewaySettings
    from runtime.jsonlog import configure
    from runtime.settingtypes import describe

    overrides: dict[str, Any] = {
        k: v
        for k, v in {
            "mode": mode,
            "host": host,
            "port": port,
            "policy_file": policy_file,
            "registry_url": registry_url,
        }.items()
        if v is not None
    }
    try:
        settings = GatewaySettings(**overrides)
        configure("gateway", settings.log_level)
        asgi = _build(settings)
    except (ValidationError, SettingsError) as exc:
        typer.echo(f"par gateway serve: {describe(exc, GatewaySettings)}", err=True)
        raise typer.Exit(2) from None
    except (ValueError, OSError) as exc:  # no policy source, unreadable JWT key
        typer.echo(f"par gateway serve: {exc}", err=True)
        raise typer.Exit(2) from None
    uvicorn.run(
        asgi,
        host=settings.host,
        port=settings.port,
        log_config=None,
        lifespan="on",
        **settings.uvicorn_options(),
    )


def _build(settings: GatewaySettings) -> GatewayApp:
    if settings.mode == "proxy":
        from gateway.proxy import build_proxy_app

        return build_proxy_app(settings)
    from gateway.authz import build_authz_app

    return build_authz_app(settings)
