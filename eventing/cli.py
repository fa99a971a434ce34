"""`par eventing ...` commands: the CloudEvents broker on Kafka."""

from pathlib import Path

import typer

from eventing.dlq_cli import build as build_dlq

app = typer.Typer(
    help="The CloudEvents broker: ingress and trigger dispatcher on Kafka.", no_args_is_help=True
)
app.add_typer(build_dlq(None, serve=True), name="dlq")


@app.command()
def serve(
    config: Path = typer.Option(None, "--config", "-c", help="YAML with Knative Broker/Trigger objects."),
    port: int = typer.Option(None, "--port", "-p", help="Port (default: $PORT or 8080)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
    ingress: bool = typer.Option(True, "--ingress/--no-ingress", help="Serve POST /{namespace}/{broker}."),
    dispatcher: bool = typer.Option(True, "--dispatcher/--no-dispatcher", help="Deliver to Triggers."),
    insecure_no_auth: bool = typer.Option(
        False, "--insecure-no-auth",
        help="Run the admin API without PAR_EVENTING_ADMIN_TOKEN (anyone may use it).",
    ),
) -> None:
    """Broker ingress, trigger dispatcher and admin API; Kafka from KAFKA_BOOTSTRAP_SERVERS, else embedded."""
    from eventing.server import run

    raise typer.Exit(run(config, port, host, ingress, dispatcher, insecure_no_auth))


@app.command()
def kafka(
    port: int = typer.Option(9092, "--port", "-p", help="Loopback port to listen on."),
) -> None:
    """Run only the embedded Kafka-compatible broker (Tansu, memory storage) until Ctrl-C."""
    import signal

    from eventing.embedded import EmbeddedKafka
    from runtime.jsonlog import configure

    configure("eventing")
    with EmbeddedKafka(port=port) as broker:
        typer.echo(f"KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap}  (memory storage only)")
        signals = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, signals)
        signal.sigwait(signals)
