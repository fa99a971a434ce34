"""The original Pixell runtime's HTTP contract, kept for the control planes and UIs that call it.

Routes, in the original's shapes and status codes: `GET /health` (503 until ready),
`/agents/{AGENT_APP_ID}/health`, `/meta`, `/a2a/health`, `/ui/health`, `/ui-config.json`, and the
UI at `BASE_PATH` + `ui.basePath` with a single-page fallback. `Front` serves every route under
`BASE_PATH` as well as at the root, and the UI alone on `UI_PORT` when `MULTIPLEXED=false`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from runtime.agent import Agent


def millis() -> int:
    return int(time.time() * 1000)


@dataclass
class Readiness:
    """What /health reports: ready once the app (and the gRPC service, if any) started."""

    ready: bool = False
    grpc: bool | None = None  # None: no gRPC service in this process
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    boot_ms: float | None = None


class SinglePageApp:
    """Static files from `directory`; any other GET gets index.html (client-side routing)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory.resolve()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            response: Response = JSONResponse({"detail": "Method Not Allowed"}, status_code=405)
        else:
            response = self.response(_sub_path(scope))
        await response(scope, receive, send)

    def response(self, rel: str) -> Response:
        target = (self.directory / rel.lstrip("/")).resolve()
        if rel and target.is_file() and target.is_relative_to(self.directory):
            return FileResponse(target)
        index = self.directory / "index.html"
        if index.is_file():
            return FileResponse(index)
        return JSONResponse({"detail": "UI not found"}, status_code=404)


def _sub_path(scope: Scope) -> str:
    """The path below this app's mount point (Starlette sets root_path to the mount)."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def ui_base(agent: Agent, base_path: str) -> str:
    """Where the original served the UI: BASE_PATH joined with ui.basePath, ending in '/'."""
    manifest_base = (agent.prepared.manifest.ui.base_path if agent.prepared.manifest.ui else "/").strip("/")
    joined = "/".join(p for p in (base_path.strip("/"), manifest_base) if p)
    return f"/{joined}/" if joined else "/"


def routes(
    agent: Agent,
    readiness: Readiness,
    app_id: str | None,
    base_path: str,
    rest_routes: list[dict[str, str]] | None = None,
) -> list[Route]:
    """The original's routes (the UI itself is mounted by the app, after the package's routes).
    `rest_routes` (filled once the package's REST routes are mounted) is listed in /meta, so a
    smoke test (`par migrate`) can find them."""
    manifest = agent.prepared.manifest
    declared = {
        "a2a": manifest.a2a is not None,
        "rest": manifest.rest is not None,
        "ui": manifest.ui is not None,
    }

    def surfaces(ok: bool) -> dict[str, bool]:
        found = {"rest": ok}
        if declared["a2a"]:
            found["a2a"] = ok and a2a_ok()
        if declared["ui"]:
            found["ui"] = ok and ui_ok()
        return found

    def a2a_ok() -> bool:
        return agent.surfaces["a2a"] and readiness.grpc is not False

    def ui_ok() -> bool:
        return agent.ui_dir is not None and (agent.ui_dir / "index.html").is_file()

    async def health(_: Request) -> JSONResponse:
        ok = readiness.ready
        body = {"ok": ok, "surfaces": surfaces(ok), "timestamp": millis()}
        return JSONResponse(body, status_code=200 if ok else 503)

    async def agent_health(request: Request) -> JSONResponse:
        agent_id = request.path_params["agent_id"]
        if not app_id or agent_id != app_id:
            return JSONResponse({"error": "Agent not found", "agentId": agent_id, "loaded": False}, 404)
        if not readiness.ready:
            return JSONResponse({"agentId": agent_id, "status": "starting", "loaded": True}, 503)
        return JSONResponse({"agentId": agent_id, "status": "healthy", "loaded": True})

    async def meta(_: Request) -> JSONResponse:
        body: dict[str, Any] = {
            "name": manifest.name,
            "version": manifest.version,
            "description": manifest.description,
            "author": manifest.author,
            "build_time": readiness.loaded_at.isoformat(),
            "surfaces": declared,
            "runtime_surfaces": agent.surfaces,
            "sub_agents": [s.model_dump(exclude_none=True) for s in manifest.metadata.sub_agents],
            "rest_routes": rest_routes or [],
        }
        if readiness.boot_ms is not None:
            body["boot_stats"] = {"total_ms": readiness.boot_ms}
        return JSONResponse(body)

    async def a2a_health(_: Request) -> JSONResponse:
        if not declared["a2a"]:
            return JSONResponse({"detail": "A2A service not available"}, 404)
        ok = a2a_ok()
        return JSONResponse({"ok": ok, "service": "a2a", "timestamp": millis()}, 200 if ok else 503)

    async def ui_health(_: Request) -> JSONResponse:
        return JSONResponse({"ok": declared["ui"] and ui_ok(), "service": "ui", "timestamp": millis()})

    async def ui_config(_: Request) -> JSONResponse:
        return JSONResponse({"apiBase": ui_base(agent, base_path).rstrip("/") + "/api"})

    found = [
        Route("/health", health),
        Route("/agents/{agent_id:path}/health", agent_health),  # PAR's ids are `{namespace}/{agent}`
        Route("/meta", meta),
        Route("/a2a/health", a2a_health),
        Route("/ui/health", ui_health),
    ]
    if declared["ui"]:
        found.append(Route(ui_base(agent, "/") + "ui-config.json", ui_config))
    return found


def ui_only_app(agent: Agent, base_path: str, port: int) -> ASGIApp:
    """The UI alone, as the original served it on UI_PORT when not multiplexed."""

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "service": "ui", "port": port})

    app = Starlette(routes=[Route("/health", health)])
    if agent.ui_dir is not None:
        app.mount(ui_base(agent, base_path).rstrip("/") or "/", SinglePageApp(agent.ui_dir))
    return app


class Front:
    """Plain ASGI in front of the app: every route also under BASE_PATH (the path keeps its
    prefix and `root_path` says where the app is mounted, as ASGI mounts do), except the
    original's top-level `/agents/{app_id}/health`; the UI alone on UI_PORT when not multiplexed."""

    def __init__(
        self,
        app: ASGIApp,
        base_path: str,
        ui_app: ASGIApp | None = None,
        ui_port: int = 0,
        app_id: str | None = None,
    ) -> None:
        self.app, self.base, self.ui_app, self.ui_port = app, base_path.rstrip("/"), ui_app, ui_port
        self._agent_health = f"/agents/{app_id}/health" if app_id else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            if self.ui_app is not None and (scope.get("server") or ("", 0))[1] == self.ui_port:
                await self.ui_app(scope, receive, send)
                return
            path = scope["path"]
            if (
                self.base
                and (path == self.base or path.startswith(self.base + "/"))
                and path != self._agent_health
            ):
                scope = {**scope, "root_path": scope.get("root_path", "") + self.base}
        await self.app(scope, receive, send)
