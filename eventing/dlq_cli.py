"""`par events dlq` / `par eventing dlq`: list, show, redrive and purge dead letters; serve the store.

The commands are clients of a dead-letter store's HTTP API (`/dead-letters`): the one `par up` runs
(found from its data folder by `par events dlq`), or any `--url` such as the Service PAR ships for
Knative (`knative/eventing/dead-letters`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import typer

# () -> (store URL, bearer token): where the commands go when --url is not given
Locate = Callable[[], tuple[str | None, str | None]]

URL_HELP = "The dead-letter store: an eventing URL (par up's, or the Knative Service's). Env PAR_DLQ_URL."
_url = typer.Option(None, "--url", envvar="PAR_DLQ_URL", help=URL_HELP)
_token = typer.Option(None, "--token", envvar="PAR_DLQ_TOKEN", help="Bearer token (par up's is found).")
_trigger = typer.Option(None, "--trigger", "-t", help="Only this Trigger: NAME or NAMESPACE/NAME.")
_type = typer.Option(None, "--type", help="Only events of this CloudEvents type.")
_since = typer.Option(None, "--since", help="Stored at or after: ISO-8601 time or 90s, 2h, 1d ago.")
_until = typer.Option(None, "--until", help="Stored before: ISO-8601 time or a duration ago.")
_output = typer.Option("table", "--output", "-o", help="table or json.")


def build(locate: Locate | None, *, serve: bool) -> typer.Typer:
    """The `dlq` command group; `locate` finds par up's store when --url is not given."""
    app = typer.Typer(help="Dead letters: events a Trigger could not deliver.", no_args_is_help=True)

    def client(url: str | None, token: str | None) -> Any:
        import httpx

        found_url, found_token = locate() if locate and not url else (None, None)
        url = url or found_url
        if not url:
            typer.echo("error: no dead-letter store: give --url (or PAR_DLQ_URL), or start par up", err=True)
            raise typer.Exit(2)
        token = token or found_token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=120)

    def call(url: str | None, token: str | None, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            with client(url, token) as http:
                response = http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            typer.echo(f"error: dead-letter store unreachable: {exc}", err=True)
            raise typer.Exit(1) from None
        if response.status_code >= 400 and response.status_code != 502:
            is_json = "json" in response.headers.get("content-type", "")
            detail = response.json().get("detail") if is_json else ""
            typer.echo(f"error: {response.status_code} {detail or response.text[:300]}", err=True)
            raise typer.Exit(1)
        return response

    def filters(
        trigger: str | None, type_: str | None, since: str | None, until: str | None
    ) -> dict[str, str]:
        given = {"trigger": trigger, "type": type_, "since": since, "until": until}
        return {k: v for k, v in given.items() if v}

    @app.command("list")
    def list_(trigger: str = _trigger, type_: str = _type, since: str = _since, until: str = _until,
              output: str = _output, url: str = _url, token: str = _token) -> None:
        """Dead letters, oldest first."""
        params = filters(trigger, type_, since, until)
        items = call(url, token, "GET", "/dead-letters", params=params).json()["items"]
        if output == "json":
            typer.echo(json.dumps(items, indent=2))
            return
        from rich.console import Console
        from rich.table import Table

        table = Table("ID", "STORED", "TRIGGER", "TYPE", "EVENT ID", "CODE", "ATTEMPTS", "DESTINATION",
                      box=None, header_style="bold")
        for item in items:
            stored = datetime.fromtimestamp(item["stored_at"], UTC).strftime("%Y-%m-%d %H:%M:%S")
            table.add_row(item["id"], stored, f"{item['namespace']}/{item['trigger']}", item["type"],
                          item["event_id"], str(item["code"] or item["error"][:30] or "-"),
                          str(item["attempts"]), item["destination"])
        Console(width=200).print(table)
        typer.echo(f"{len(items)} dead letter(s)")

    @app.command()
    def show(entry_id: str = typer.Argument(..., help="The dead letter's ID (from list)."),
             url: str = _url, token: str = _token) -> None:
        """One dead letter: the event's headers and data, the error extensions, the last response."""
        typer.echo(json.dumps(call(url, token, "GET", f"/dead-letters/{entry_id}").json(), indent=2))

    @app.command()
    def redrive(entry_id: str = typer.Argument(None, help="One dead letter; without it, all that match."),
                trigger: str = _trigger, type_: str = _type, since: str = _since, until: str = _until,
                url: str = _url, token: str = _token) -> None:
        """Send dead letters again to their Trigger's subscriber; delivered ones leave the store."""
        if entry_id:
            results = [call(url, token, "POST", f"/dead-letters/{entry_id}/redrive").json()]
        else:
            params = filters(trigger, type_, since, until)
            results = call(url, token, "POST", "/dead-letters/redrive", params=params).json()["items"]
        for result in results:
            why = result["status"] or result.get("error")
            what = "delivered" if result["delivered"] else f"failed ({why})"
            typer.echo(f"{result['id']} {result['event_id']} -> {result['url']}: {what}")
        failed = sum(not r["delivered"] for r in results)
        typer.echo(f"{len(results) - failed} delivered, {failed} failed (kept)")
        if failed:
            raise typer.Exit(1)

    @app.command()
    def purge(entry_id: str = typer.Argument(None, help="One dead letter; without it, all that match."),
              trigger: str = _trigger, type_: str = _type, since: str = _since, until: str = _until,
              yes: bool = typer.Option(False, "--yes", "-y", help="Purge all that match without asking."),
              url: str = _url, token: str = _token) -> None:
        """Delete dead letters without sending them."""
        if entry_id:
            call(url, token, "DELETE", f"/dead-letters/{entry_id}")
            typer.echo(f"{entry_id} purged")
            return
        params = filters(trigger, type_, since, until)
        if not params and not yes:
            typer.echo("error: purging every dead letter needs --yes (or a filter)", err=True)
            raise typer.Exit(2)
        typer.echo(f"{call(url, token, 'DELETE', '/dead-letters', params=params).json()['purged']} purged")

    if serve:
        @app.command("serve")
        def serve_(
            store: str = typer.Option("dead-letters.sqlite3", "--store", envvar="PAR_EVENTING_DEAD_LETTERS",
                                      help="The SQLite file."),
            port: int = typer.Option(8080, "--port", "-p", envvar="PORT"),
            host: str = typer.Option("127.0.0.1", "--host"),
            insecure_no_auth: bool = typer.Option(
                False, "--insecure-no-auth", envvar="PAR_EVENTING_INSECURE_NO_AUTH",
                help="Serve without PAR_EVENTING_ADMIN_TOKEN (anyone may read, redrive and purge).",
            ),
        ) -> None:
            """The dead-letter store alone (a Knative dead-letter sink Service): /dead-letters."""
            import os

            import uvicorn

            from eventing.dlq_api import standalone_app
            from eventing.settings import missing_token
            from runtime.jsonlog import configure

            token = os.environ.get("PAR_EVENTING_ADMIN_TOKEN")
            refusal = missing_token(token, insecure_no_auth, "the dead-letter store")
            if refusal:
                typer.echo(f"par eventing dlq serve: {refusal}", err=True)
                sys.exit(2)
            configure("eventing")
            app_ = standalone_app(store, token, 600.0, insecure=insecure_no_auth)
            uvicorn.run(app_, host=host, port=port, log_config=None, access_log=False)
            sys.exit(0)

    return app
