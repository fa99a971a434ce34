"""`par eventing ...` commands: the CloudEvents broker on Kafka."""

import typer

app = typer.Typer(
    help="The CloudEvents broker: ingress and trigger dispatcher on Kafka.", no_args_is_help=True
)
