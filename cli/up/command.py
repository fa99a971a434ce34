"""`par up`: the command. Imports stay inside the function so that `par --help` stays fast."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import typer

from gateway.hosts import DEFAULT_DOMAIN, agent_host


def up(
    data_dir: Path = typer.Option(
        None, "--data-dir", envvar="PAR_DATA_DIR", help="Where registry, packages and logs live [~/.par]."
    ),
    port: int = typer.Option(8080, "--port", "-p", help="The gateway's port (agents are called here)."),
    demo: bool = typer.Option(False, "--demo", help="Also build and deploy the example agents and trigger."),
    domain: str = typer.Option(
        DEFAULT_DOMAIN, "--domain", help="Agents answer at Host {agent}.{namespace}.{domain}."
    ),
) -> None:
    """Run the whole platform on this machine: registry, gateway, broker, agents on demand.

    Ctrl-C or SIGTERM stops everything, every agent process included.
    """
    import logging

    from cli.settings import check_all
    from registry.discovery import data_dir as resolve_data_dir
    from runtime.jsonlog import configure
    from serving import IsolationRequired

    from .demo import DemoError, deploy_demo
    from .platform import AlreadyRunning, Platform, UpOptions, run
    from .servers import PortInUse

    check_all()  # every part's settings, before any part starts
    configure("platform")
    # Each part logs its own start ("serving part=..."): uvicorn's three lines per server are noise.
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    options = UpOptions(data_dir=resolve_data_dir(data_dir), port=port, domain=domain)

    def say(line: str) -> None:
        print(line, flush=True)

    async def ready(platform: Platform) -> None:
        info = platform.info
        assert info is not None
        key_file = platform.data_dir / "admin.key"
        say(banner(info.gateway_url, info.registry_url, platform.admin_key, key_file, info.domain, port,
                   grpc=platform.grpc_address, broker=info.eventing_url))
        if demo:
            await deploy_demo(info.registry_url, platform.admin_key or "", platform.data_dir, say)
            say("demo ready: emit an event, then see it received:\n"
                + curl(port, "event-emitter", info.domain, key_file, '{"message":"hi"}') + "\n"
                + curl(port, "event-receiver", info.domain, key_file, path="/api/received"))

    try:
        _run_loop(run(options, ready))
    except (AlreadyRunning, PortInUse, DemoError, IsolationRequired) as exc:
        print(f"par up: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        pass
    say("par up: stopped")


def _run_loop(main: Any) -> None:
    """uvloop when installed (uvicorn[standard] brings it): lower proxy latency than asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        import asyncio

        asyncio.run(main)
    else:
        uvloop.run(main)


def banner(
    gateway: str, registry: str, key: str | None, key_file: Path, domain: str, port: int,
    grpc: str | None = None, broker: str | None = None,
) -> str:
    grpc_line = [f"  grpc       {grpc}   (pixell.agent.AgentService; metadata x-par-agent: {{agent}})"]
    broker_line = [f"  broker     {broker}/default/default   (CloudEvents: POST {{namespace}}/{{broker}})"]
    par = par_command()
    return "\n".join([
        "PAR is up.",
        f"  gateway    {gateway}   (agents: Host {{agent}}.{{namespace}}.{domain})",
        *(grpc_line if grpc else []),
        f"  console    {registry}/console   (sign in with the admin key)",
        f"  registry   {registry}",
        *(broker_line if broker else []),
        f"  admin key  {key}   (saved in {key_file})",
        f"  par        {par}   (to put it and these URLs in a shell: eval \"$({par} env)\")",
        "Next:",
        "  par deploy demo-agent-0.1.0.apkg        # or: par up --demo",
        curl(port, "demo-agent", domain, key_file, '{"x":1}'),
        "Ctrl-C stops everything.",
    ])


def par_command() -> str:
    """The `par` this platform runs from: beside its Python (a venv), else the one on PATH."""
    beside = Path(sys.executable).with_name("par")
    return str(beside) if beside.is_file() else shutil.which("par") or "par"


def curl(
    port: int, agent: str, domain: str, key_file: Path, data: str | None = None, path: str = "/invoke"
) -> str:
    """A copy-paste command calling `agent` through the gateway with the admin key."""
    auth = f"-H \"Authorization: Bearer $(cat {key_file})\""
    host = f"-H 'Host: {agent_host(agent, 'default', domain)}'"
    if data is None:
        return f"  curl localhost:{port}{path} {host} {auth}"
    body = f"-H 'content-type: application/json' -d '{data}'"
    return f"  curl -XPOST localhost:{port}{path} {host} {auth} {body}"
