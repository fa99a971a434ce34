"""`par migrate PATH...`: move agents of the original Pixell runtime (or any APKG) onto PAR.

For each package (APKG files, folders of them, https URLs): check it as the runtime will, deploy
it through the registry with the environment given, then smoke-test every surface it declares
through the gateway, as a caller would - `/health`, one call of the entrypoint, each REST GET
route without parameters (listed by the runtime's `/meta`), the A2A card and the UI. The result
is one row per package (agent, version, layout, surfaces, result, cause), printed as a table and
with `--report FILE` written as JSON. One package's failure never stops the others; the exit
status is 1 when any package failed. `--dry-run` only checks.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import typer

REST_PARAMETER = "{"


@dataclass
class Row:
    source: str  # as given (a file, or a URL)
    package: str = ""  # the local file
    agent: str = ""
    version: str = ""
    layout: str = ""
    surfaces: list[str] = field(default_factory=list)
    result: str = ""  # checked | migrated | failed | refused
    cause: str = ""
    checks: list[dict[str, Any]] = field(default_factory=list)


class Gateway:
    """Calls to one agent through the gateway, as its callers make them (Host routing, a key)."""

    def __init__(self, url: str, domain: str, key: str | None, namespace: str, timeout: float) -> None:
        import httpx

        from gateway.hosts import agent_host

        self.http = httpx.Client(base_url=url, timeout=timeout)
        self.key, self.namespace, self.domain, self.host = key, namespace, domain, agent_host

    def call(self, agent: str, method: str, path: str, body: Any = None) -> Any:
        headers = {"Host": self.host(agent, self.namespace, self.domain)}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        return self.http.request(method, path, headers=headers, json=body)


def migrate(
    paths: list[str] = typer.Argument(..., help="APKG files, folders of them, or https:// URLs"),
    namespace: str = typer.Option("default", "--namespace", "-n", help="Namespace to deploy into"),
    env: list[str] = typer.Option([], "--env", "-e", help="KEY=VALUE for every agent (repeatable)"),
    keep_base_path: bool = typer.Option(
        False, "--keep-base-path", help="Also serve each agent under /agents/{agent} (BASE_PATH), as before"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only check the packages; deploy nothing"),
    report: Path = typer.Option(None, "--report", help="Also write the rows as JSON to this file"),
    timeout: float = typer.Option(180.0, "--timeout", help="Seconds per deployment and per smoke call"),
) -> None:
    """Check, deploy and smoke-test a fleet of agent packages; one row per package."""
    from rich.console import Console

    from registry.commands.common import pairs

    console = Console(stderr=True)
    environment = pairs(env, "--env")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="par-migrate-") as downloads:
        sources = _expand(paths)
        gateway = None if dry_run else _gateway(namespace, timeout)
        for source in sources:
            with console.status(f"{source}: checking"):
                row = _check(source, Path(downloads))
            if row.result != "refused" and gateway is not None:
                with console.status(f"{row.agent}: deploying and smoke-testing"):
                    _deploy_and_smoke(row, gateway, namespace, environment, keep_base_path, timeout)
            rows.append(row)
    _print(rows)
    if report is not None:
        report.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    if any(r.result in ("failed", "refused") for r in rows):
        raise typer.Exit(1)


def _expand(paths: list[str]) -> list[str]:
    """Files and URLs as given; a folder becomes its `*.apkg` files (sorted, recursively)."""
    found: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += [str(p) for p in sorted(path.rglob("*.apkg"))] or [raw]
        else:
            found.append(raw)
    return found


def _gateway(namespace: str, timeout: float) -> Gateway:
    import os

    from gateway.hosts import DEFAULT_DOMAIN
    from registry.discovery import locate

    found = locate()
    if not found.gateway_url:
        typer.echo("Error: no running `par up` (start one, set PAR_GATEWAY_URL, or --dry-run)", err=True)
        raise typer.Exit(1)
    domain = found.domain or os.environ.get("PAR_GATEWAY_DOMAIN", DEFAULT_DOMAIN)
    return Gateway(found.gateway_url, domain, found.api_key, namespace, timeout)


def _check(source: str, downloads: Path) -> Row:
    """Fetch (URLs) and validate a package as the runtime does; refusals name their cause."""
    from runtime.apkg import ApkgError, validate

    row = Row(source=source)
    try:
        path = _fetch(source, downloads) if source.startswith(("http://", "https://")) else Path(source)
        info = validate(path)
    except ApkgError as exc:
        row.result, row.cause = "refused", f"{exc.code}: {exc}"
        return row
    manifest = info.manifest
    row.agent, row.version, row.layout = manifest.name, manifest.version, info.layout
    row.surfaces = [
        name
        for name, present in (
            ("invoke", manifest.entrypoint is not None),
            ("rest", manifest.rest is not None),
            ("a2a", manifest.a2a is not None),
            ("http_server", manifest.http_server is not None),
            ("ui", manifest.ui is not None),
        )
        if present
    ]
    row.result, row.package = "checked", str(path)
    return row


def _fetch(url: str, downloads: Path) -> Path:
    from runtime.config import RuntimeSettings
    from runtime.sources import download

    settings = RuntimeSettings().model_copy(update={"work_dir": downloads})
    return download(url, settings, progress=lambda _: None)


def _deploy_and_smoke(
    row: Row, gateway: Gateway, namespace: str, env: dict[str, str], keep_base_path: bool, timeout: float
) -> None:
    from registry.client import RegistryError
    from registry.commands.common import client

    body: dict[str, Any] = {"env": dict(env)}
    if keep_base_path:
        body["env"]["BASE_PATH"] = f"/agents/{row.agent}"
    try:
        with client() as registry:
            uploaded = registry.upload(namespace, Path(row.package)).json()
            body["version"] = uploaded["version"]
            agent_path = f"/v1/namespaces/{namespace}/agents/{uploaded['agent']}"
            registry.json("PUT", f"{agent_path}/deployment", json=body)
            status = _wait(registry, agent_path, timeout)
    except RegistryError as exc:
        row.result, row.cause = "failed", f"deploy: {exc}"
        return
    if status["phase"] == "failed":
        row.result, row.cause = "failed", f"deploy: {status.get('message') or 'failed'}"
        return
    row.checks = _smoke(row, gateway)
    failed = [c for c in row.checks if not c["ok"]]
    row.result = "failed" if failed else "migrated"
    row.cause = "; ".join(f"{c['check']}: {c['detail']}" for c in failed)


def _wait(registry: Any, agent_path: str, timeout: float) -> dict[str, Any]:
    """Until the deployment is ready (an agent scaled to zero counts) or failed, or the timeout."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        status: dict[str, Any] = registry.json("GET", f"{agent_path}/deployment")["status"]
        if status["phase"] in ("ready", "failed"):
            return status
        if time.monotonic() > deadline:
            return {"phase": "failed", "message": f"not ready within {timeout:.0f}s ({status['phase']})"}
        time.sleep(0.3)


def _smoke(row: Row, gateway: Gateway) -> list[dict[str, Any]]:
    """One call per declared surface through the gateway; a 5xx or no answer fails it."""
    checks: list[dict[str, Any]] = []

    def check(name: str, method: str, path: str, body: Any = None, expect: Any = None) -> Any:
        try:
            response = gateway.call(row.agent, method, path, body)
        except Exception as exc:  # an unreachable gateway, a timeout: this check fails, others run
            checks.append({"check": name, "ok": False, "detail": f"{type(exc).__name__}: {exc}"})
            return None
        ok = response.status_code < 500 if expect is None else expect(response)
        detail = f"HTTP {response.status_code}" + ("" if ok else f": {_reason(response)}")
        checks.append({"check": name, "ok": ok, "detail": detail})
        return response

    health = check("health", "GET", "/health", expect=lambda r: r.status_code == 200 and r.json().get("ok"))
    if health is None or not checks[-1]["ok"]:
        return checks  # the agent does not serve: every other call would fail the same way
    if "invoke" in row.surfaces:
        check("entrypoint", "POST", "/invoke", {})
    meta = check("meta", "GET", "/meta", expect=lambda r: r.status_code == 200)
    routes = meta.json().get("rest_routes", []) if meta is not None and meta.status_code == 200 else []
    for route in routes:
        if route["method"] == "GET" and REST_PARAMETER not in route["path"]:
            check(f"rest GET {route['path']}", "GET", route["path"])
    if "a2a" in row.surfaces:
        check(
            "a2a card",
            "GET",
            "/.well-known/agent-card.json",
            expect=lambda r: r.status_code == 200 and r.json().get("protocolVersion") == "0.3.0",
        )
    if "ui" in row.surfaces:
        check("ui", "GET", "/ui/health", expect=lambda r: r.status_code == 200 and r.json().get("ok") is True)
    return checks


def _reason(response: Any) -> str:
    """An error answer's reason: a problem+json `detail` (the gateway's, the runtime's), else text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("detail"):
        return str(body["detail"])[:500]
    return response.text[:300]


def _print(rows: list[Row]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="par migrate")
    for column in ("agent", "version", "layout", "surfaces", "result", "cause"):
        table.add_column(column, overflow="fold")
    colour = {"migrated": "green", "checked": "green", "failed": "red", "refused": "red"}
    for row in rows:
        result = f"[{colour.get(row.result, 'white')}]{row.result}[/]"
        surfaces = ",".join(row.surfaces)
        table.add_row(row.agent or row.source, row.version, row.layout, surfaces, result, row.cause)
    Console(width=160).print(table)
