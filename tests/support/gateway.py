"""Gateway test helpers: policy snapshots with real keys, and ASGI apps under a real uvicorn."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from gateway.apikeys import generate_key, hash_key
from tests.support.net import free_port, wait_http

PAR = str(Path(sys.executable).parent / "par")

HOST = "demo-agent.default.127.0.0.1.sslip.io"


def make_key(tenant: str = "acme", grants: list[str] | None = None, **fields: Any) -> tuple[str, dict]:
    """A real key and its snapshot record (hash only), granted `default/*` unless told otherwise."""
    key_id, key = generate_key()
    record = {
        "id": key_id,
        "hash": hash_key(key),
        "tenant": tenant,
        "admin": False,
        "grants": ["default/*"] if grants is None else grants,
        "rate": None,
        "burst": None,
        "revoked": False,
        "expires_at": None,
        **fields,
    }
    return key, record


def agent(name: str = "demo-agent", namespace: str = "default", **fields: Any) -> dict:
    return {"namespace": namespace, "name": name, "public": False, "rate": None, "burst": None, **fields}


def snapshot(keys: list[dict], agents: list[dict] | None = None, revision: str = "1") -> dict:
    return {"revision": revision, "keys": keys, "agents": [agent()] if agents is None else agents}


@contextmanager
def serve(app: Any, **config: Any) -> Iterator[str]:
    """Run `app` under uvicorn on a free loopback port in a thread; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **config)
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on port {port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def run_par(args: list[str], ready_url: str, log: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    """Run `par <args>` as a user would (stderr to `log`) until `ready_url` answers 200; stop it after."""
    with open(log, "wb") as stderr:
        proc = subprocess.Popen(
            [PAR, *args], env={**os.environ, **(env or {})}, stderr=stderr, stdout=subprocess.DEVNULL
        )
    try:
        try:
            wait_http(ready_url, timeout=60)
        except TimeoutError:
            raise RuntimeError(f"par {' '.join(args)} did not get ready: {log.read_text()[-2000:]}") from None
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=15)
