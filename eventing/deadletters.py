"""The built-in dead-letter store: failed events kept where a user can list, read, send again, purge.

A dead letter is the event as a dead-letter sink gets it from Knative (binary-mode HTTP, with the
`knativeerrordest`, `knativeerrorcode`, `knativeerrordata` extensions), plus what PAR knows about the
failure: the Trigger, the attempts made and the last response. Stored in one SQLite file, so dead
letters outlive a restart. `par up` sends here the dead letters of every Trigger without its own
`deadLetterSink`; any Trigger may name it (`deadLetterSink.uri: <eventing>/dead-letters`), and on
Knative `par eventing dlq serve` is the same store as a Service.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudevents.core.base import BaseCloudEvent

from eventing import metrics, wire

ERROR_EXTENSIONS = ("knativeerrordest", "knativeerrorcode", "knativeerrordata")
TRIGGER_HEADER = "x-par-trigger"  # "namespace/name", sent with a dead letter by PAR's dispatcher
ATTEMPTS_HEADER = "x-par-attempts"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    id TEXT PRIMARY KEY,
    stored_at REAL NOT NULL,
    namespace TEXT NOT NULL,
    trigger TEXT NOT NULL,
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    source TEXT NOT NULL,
    destination TEXT NOT NULL,
    code INTEGER,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    response_headers TEXT NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_by_trigger ON dead_letters (namespace, trigger, stored_at);
"""

SUMMARY = ("id", "stored_at", "namespace", "trigger", "event_id", "type", "source", "destination", "code",
           "error", "attempts")
FULL = (*SUMMARY, "response_headers", "headers", "body")


@dataclass(frozen=True)
class Query:
    """Which dead letters: by Trigger (namespace, name), event type, and stored time (epoch seconds)."""

    namespace: str | None = None
    trigger: str | None = None
    type: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 1000

    def where(self) -> tuple[str, list[Any]]:
        clauses, params = [], []
        for column, value, op in (("namespace", self.namespace, "="), ("trigger", self.trigger, "="),
                                  ("type", self.type, "="), ("stored_at", self.since, ">="),
                                  ("stored_at", self.until, "<")):
            if value is not None:
                clauses.append(f"{column} {op} ?")
                params.append(value)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


@dataclass(frozen=True)
class Failure:
    """What the dispatcher knows of a failed delivery."""

    namespace: str
    trigger: str
    attempts: int
    error: str = ""  # a network error or timeout (no HTTP response)
    response_headers: dict[str, str] | None = None


class DeadLetterStore:
    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # no fsync per dead letter on the dispatcher's loop
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def add(self, dead: BaseCloudEvent, failure: Failure) -> str:
        """Keep `dead` (the event with its knativeerror* extensions); its id in the store."""
        attributes = wire.attribute_strings(dead)
        message = wire.to_http(dead)
        code = attributes.get("knativeerrorcode")
        entry_id = uuid.uuid4().hex
        self.db.execute(
            "INSERT INTO dead_letters VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (entry_id, time.time(), failure.namespace, failure.trigger, attributes.get("id", ""),
             attributes.get("type", ""), attributes.get("source", ""), attributes.get("knativeerrordest", ""),
             int(code) if code and code.isdigit() else None, failure.error, failure.attempts,
             json.dumps(failure.response_headers or {}), json.dumps(dict(message.headers)), message.body),
        )
        return entry_id

    def list(self, query: Query) -> list[dict[str, Any]]:
        where, params = query.where()
        rows = self.db.execute(f"SELECT {', '.join(SUMMARY)} FROM dead_letters{where} ORDER BY stored_at "
                               "LIMIT ?", [*params, query.limit])
        return [dict(zip(SUMMARY, row, strict=True)) for row in rows]

    def get(self, entry_id: str) -> dict[str, Any] | None:
        query = f"SELECT {', '.join(FULL)} FROM dead_letters WHERE id = ?"
        row = self.db.execute(query, (entry_id,)).fetchone()
        if row is None:
            return None
        entry = dict(zip(FULL, row, strict=True))
        entry["response_headers"] = json.loads(entry["response_headers"])
        entry["headers"] = json.loads(entry["headers"])
        return entry

    def event(self, entry: dict[str, Any]) -> BaseCloudEvent:
        """The original event: as stored, without the dead-letter extensions."""
        headers = {k: v for k, v in entry["headers"].items()
                   if k.lower().removeprefix("ce-") not in ERROR_EXTENSIONS}
        return wire.from_http(headers, entry["body"])

    def failed_again(self, entry_id: str, attempts: int, code: int | None, error: str) -> None:
        self.db.execute("UPDATE dead_letters SET attempts = attempts + ?, code = ?, error = ? WHERE id = ?",
                        (attempts, code, error, entry_id))

    def delete(self, entry_id: str) -> bool:
        return self.db.execute("DELETE FROM dead_letters WHERE id = ?", (entry_id,)).rowcount > 0

    def purge(self, query: Query) -> int:
        where, params = query.where()
        return int(self.db.execute(f"DELETE FROM dead_letters{where}", params).rowcount)

    def counts(self) -> dict[tuple[str, str], int]:
        rows = self.db.execute(
            "SELECT namespace, trigger, COUNT(*) FROM dead_letters GROUP BY namespace, trigger")
        return {(ns, name): count for ns, name, count in rows}


def update_gauge(store: DeadLetterStore) -> None:
    """`par_eventing_dead_letters` from the store (after every change: a GROUP BY on an index)."""
    metrics.DEAD_LETTERS_STORED.clear()
    for (namespace, trigger), count in store.counts().items():
        metrics.DEAD_LETTERS_STORED.labels(namespace, trigger).set(count)


def view(entry: dict[str, Any]) -> dict[str, Any]:
    """A stored dead letter as JSON: the event's headers and data (text when it is UTF-8, else base64)."""
    out = {k: v for k, v in entry.items() if k != "body"}
    body: bytes = entry["body"]
    try:
        out["data"] = body.decode()
    except UnicodeDecodeError:
        out["data_base64"] = base64.b64encode(body).decode()
    data = entry["headers"].get("ce-knativeerrordata")
    if data:  # the subscriber's last answer, as Knative sends it (base64 in the extension)
        out["response_body"] = base64.b64decode(data).decode(errors="replace")
    return out
