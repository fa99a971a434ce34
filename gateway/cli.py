"""`par gateway ...` commands: the auth, authz and rate-limit gateway."""

import typer

app = typer.Typer(help="The gateway: ext_authz service or local ingress proxy.", no_args_is_help=True)
