"""`par up --demo`: build the example agents with the real `pixell build`, upload and deploy them
through the registry API, and create the trigger that carries the emitter's events to the
receiver. Built packages are cached in `<data dir>/demo/` by the sources' content."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx

EXAMPLES = Path(__file__).with_name("examples")  # the checkout's examples/, shipped in the wheel
DEMO_AGENTS = ("demo-agent", "event-emitter", "event-receiver")
DEMO_TRIGGER = {
    "name": "greetings",
    "broker": "default",
    "filters": {"type": "par.demo.greeting"},
    "sink_agent": "event-receiver",
}


class DemoError(RuntimeError):
    """The demo could not be built or deployed; the message says which step and why."""


def pixell_command() -> str:
    """`PAR_PIXELL`, else a pixell beside this Python (`pip install pixell-kit` in PAR's venv), else
    the pixell-kit scripts/bootstrap.sh installs in a checkout, else `pixell` on PATH."""
    checkout = Path(__file__).resolve().parents[2]
    candidates = [os.environ.get("PAR_PIXELL"), str(Path(sys.executable).with_name("pixell")),
                  str(checkout / ".cache/tools/pixell-kit/bin/pixell"), shutil.which("pixell")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    raise DemoError("pixell not found: run scripts/bootstrap.sh, pip install pixell-kit, or set PAR_PIXELL")


def _source_hash(project: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in project.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(project).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def build(project: Path, cache: Path) -> Path:
    """The project's APKG, built with `pixell build` unless an identical build is cached."""
    target_dir = cache / f"{project.name}-{_source_hash(project)}"
    built = next(target_dir.glob("*.apkg"), None) if target_dir.is_dir() else None
    if built is not None:
        return built
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        result = subprocess.run(
            [pixell_command(), "build", "-p", str(project), "-o", tmp],
            capture_output=True, text=True, timeout=300, check=False,
        )
        apkg = next(Path(tmp).glob("*.apkg"), None)
        if result.returncode != 0 or apkg is None:
            raise DemoError(f"pixell build {project.name} failed: {(result.stdout + result.stderr)[-500:]}")
        target_dir.mkdir()
        return Path(shutil.move(apkg, target_dir / apkg.name))


async def deploy_demo(registry_url: str, admin_key: str, data_dir: Path, say: Callable[[str], None]) -> None:
    """Build, upload and deploy the demo agents, then create the trigger (idempotent)."""
    headers = {"Authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(base_url=registry_url, headers=headers, timeout=120.0) as client:
        for name in DEMO_AGENTS:
            say(f"demo: building {name}")
            apkg = await asyncio.to_thread(build, EXAMPLES / name, data_dir / "demo")
            with apkg.open("rb") as fh:
                response = await client.post(
                    "/v1/namespaces/default/packages", files={"file": (apkg.name, fh, "application/zip")}
                )
            _check(response, f"upload {name}")
            response = await client.put(f"/v1/namespaces/default/agents/{name}/deployment", json={})
            _check(response, f"deploy {name}")
            say(f"demo: deployed {name} ({_traffic(response.json().get('traffic', []))})")
        response = await client.post("/v1/namespaces/default/triggers", json=DEMO_TRIGGER)
        if response.status_code != 409:  # already there from an earlier --demo
            _check(response, "create trigger")
        say("demo: trigger greetings (type=par.demo.greeting -> event-receiver)")


def _traffic(targets: list[dict]) -> str:
    """`0.1.0 100%` as `par agents get` shows a split, not the API's JSON."""
    return ", ".join(f"{t.get('version')} {t.get('percent')}%" for t in targets) or "no traffic yet"


def _check(response: httpx.Response, step: str) -> None:
    if response.status_code >= 400:
        raise DemoError(f"{step}: {response.status_code} {response.text[:300]}")
