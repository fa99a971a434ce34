"""`par keys create|list|revoke`: API keys for the gateway (and admin keys for the registry)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import typer

from registry.commands.common import Output, OutputOpt, client, render, reports_errors

app = typer.Typer(help="API keys (the secret is shown once, at creation).", no_args_is_help=True)
KEY_COLUMNS = (
    ("ID", lambda k: k["id"]),
    ("TENANT", lambda k: k["tenant"]),
    ("GRANTS", lambda k: ",".join(k["grants"])),
    ("ADMIN", lambda k: k["admin"]),
    ("ROLE", lambda k: k.get("role", "agents")),
    ("RATE", lambda k: k["rate"]),
    ("BURST", lambda k: k["burst"]),
    ("REVOKED", lambda k: k["revoked"]),
    ("EXPIRES", lambda k: k["expires_at"]),
    ("NAME", lambda k: k["name"]),
)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _expiry(text: str | None) -> str | None:
    """`30d`, `12h`, `15m`, `90s` -> an ISO-8601 instant that far from now."""
    if text is None:
        return None
    number, unit = text[:-1], text[-1:]
    if unit not in _UNITS or not number.isdigit():
        raise typer.BadParameter(
            f"{text!r}: use a number and s, m, h or d (e.g. 30d)", param_hint="--expires-in"
        )
    return (datetime.now(UTC) + timedelta(**{_UNITS[unit]: int(number)})).isoformat()


@app.command("create")
@reports_errors
def create(
    tenant: str = typer.Option("default", "--tenant", help="Owner; default grant is TENANT/*"),
    grant: list[str] = typer.Option([], "--grant", help="NAMESPACE/AGENT glob, e.g. default/* (repeatable)"),
    rate: float | None = typer.Option(None, "--rate", help="Requests per second"),
    burst: int | None = typer.Option(None, "--burst", help="Requests allowed in a burst"),
    admin: bool = typer.Option(False, "--admin", help="May call the registry and every agent"),
    gateway: bool = typer.Option(
        False, "--gateway", help="For a gateway: reads the registry's snapshot feed and nothing else"
    ),
    expires_in: str | None = typer.Option(None, "--expires-in", help="Lifetime, e.g. 30d, 12h"),
    name: str | None = typer.Option(None, "--name", help="A note to recognise the key by"),
    output: Output = OutputOpt,
) -> None:
    """Create a key; its secret is printed once."""
    if gateway and (admin or grant):
        raise typer.BadParameter("a gateway key takes no --admin and no --grant", param_hint="--gateway")
    body = {
        "tenant": "gateway" if gateway and tenant == "default" else tenant,
        "role": "gateway" if gateway else "agents",
        "grants": grant or None,
        "rate": rate,
        "burst": burst,
        "admin": admin,
        "expires_at": _expiry(expires_in),
        "name": name,
    }
    with client() as c:
        created = c.json("POST", "/v1/keys", json=body)
    if output is Output.table:
        if created.get("role") == "gateway":
            typer.echo(f"Gateway key {created['id']}: reads /v1/gateway/snapshot and nothing else.")
        else:
            typer.echo(
                f"Key {created['id']} for tenant {created['tenant']} (grants {', '.join(created['grants'])})."
            )
        typer.echo("The secret is shown once:", err=True)
        typer.echo(created["key"])
    else:
        render(created, output, ())


@app.command("list")
@reports_errors
def list_keys(
    tenant: str | None = typer.Option(None, "--tenant", help="Only this tenant's keys"),
    output: Output = OutputOpt,
) -> None:
    """List keys (never their secrets)."""
    with client() as c:
        items = c.pages("/v1/keys", {"tenant": tenant} if tenant else None)
    render(items, output, KEY_COLUMNS)


@app.command("revoke")
@reports_errors
def revoke(key_id: str = typer.Argument(..., help="The key id (the 12 hex after par_)")) -> None:
    """Revoke a key; gateways stop accepting it at their next refresh."""
    with client() as c:
        c.json("DELETE", f"/v1/keys/{key_id}")
    typer.echo(f"Key {key_id} revoked.")
