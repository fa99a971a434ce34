"""The console's routes under `/console`: pages (full, or the live part alone for the script's
polling), the chart's series, and the changes (invoke, traffic, rollback, keys).

Changes call the registry API's own route functions, so the console enforces exactly the API's
rules (Knative's traffic rules, key revocation, ...) and answers the API's problem+json errors.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Body, Form, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from gateway.hosts import agent_host
from registry.api import deployments, keys
from registry.api.deps import Session, State
from registry.auth import Caller
from registry.backends.errors import BackendError
from registry.console.pages import agent_rows, key_rows, trigger_rows
from registry.console.samples import Sampler
from registry.console.sessions import COOKIE, Sessions, SignInRefused, Viewer, csrf_ok
from registry.problems import Problem
from registry.schemas import KeyCreate, KeyOut, TrafficRequest
from registry.spec import LogRequest
from runtime.compare import only_value

HERE = Path(__file__).parent
STATIC = {"console.js": "text/javascript", "console.css": "text/css"}
SECURITY_HEADERS = {
    # Everything from this origin, nothing inline (no inline script or style), not framed.
    "Content-Security-Policy": "default-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: under no-referrer a browser posts the sign-in form with
    # `Origin: null`, which any sandboxed page can send too, so it must be refused.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


class Console:
    """What the console keeps while the registry runs: sessions, the metrics sampler, templates."""

    def __init__(
        self,
        gateway_url: str | None,
        metrics_urls: list[str],
        domain: str,
        trusted_proxies: Sequence[str] = (),
    ) -> None:
        self.gateway_url = gateway_url.rstrip("/") if gateway_url else None
        self.trusted_proxies = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]
        self.domain = domain
        self.sessions = Sessions()
        self.sampler = Sampler(metrics_urls)
        self.templates = Jinja2Templates(directory=HERE / "templates")

    def scheme(self, request: Request) -> str:
        """The scheme the browser used: X-Forwarded-Proto when a trusted proxy (a TLS-terminating
        ingress) sent the request and says it once, else the connection's own."""
        peer = request.client.host if request.client else ""
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return request.url.scheme
        forwarded = request.headers.getlist("x-forwarded-proto")
        if len(forwarded) == 1 and any(address in network for network in self.trusted_proxies):
            proto = forwarded[0].split(",")[0].strip().lower()
            if proto in ("http", "https"):
                return proto
        return request.url.scheme

    async def start(self) -> None:
        self.sampler.start()

    async def aclose(self) -> None:
        await self.sampler.aclose()


class _SecureRoute(APIRoute):
    """Every console response carries the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def secured(request: Request) -> Response:
            response = await handler(request)
            response.headers.update(SECURITY_HEADERS)
            return response

        return secured


LOG_LINES = 100  # the agent page's log panel
router = APIRouter(prefix="/console", route_class=_SecureRoute, include_in_schema=False)


def _console(request: Request) -> Console:
    return request.app.state.console


async def _viewer(request: Request, session: Session) -> Viewer | None:
    return await _console(request).sessions.viewer(session, request.cookies.get(COOKIE))


async def _changer(request: Request, session: Session) -> Viewer:
    """The viewer behind a change: signed in, with the session's CSRF token in the header."""
    viewer = await _viewer(request, session)
    if viewer is None:
        raise Problem(401, "Sign in", "sign in to the console with an API key", code="sign_in_required")
    if not csrf_ok(viewer, only_value(request.headers.getlist("x-csrf-token"))):
        raise Problem(403, "Forbidden", "missing or wrong X-CSRF-Token", code="csrf_failed")
    return viewer


def _admin(viewer: Viewer) -> Caller:
    if not viewer.admin:
        raise Problem(403, "Forbidden", "this needs an admin key", code="admin_required")
    return Caller(viewer.key_id, True, False, None)


def _page(request: Request, viewer: Viewer, template: str, **context: Any) -> HTMLResponse:
    """The page, or with `?live=1` only its live part (what the script polls)."""
    live = request.query_params.get("live") == "1"
    return _console(request).templates.TemplateResponse(
        request, template, {"viewer": viewer, "live": live, "active": template.split(".")[0], **context}
    )


def _to_sign_in() -> RedirectResponse:
    return RedirectResponse("/console/login", status_code=303)


@router.get("")
@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse("/console/agents", status_code=303)


@router.get("/static/{name}")
async def static(name: str) -> FileResponse:
    if name not in STATIC:
        raise Problem(404, "Not found", f"no console file {name}", code="not_found")
    return FileResponse(HERE / "static" / name, media_type=STATIC[name])


@router.get("/login")
async def login_page(request: Request) -> HTMLResponse:
    return _console(request).templates.TemplateResponse(request, "login.html", {"error": None})


@router.post("/login")
async def login(request: Request, session: Session, key: Annotated[str, Form()] = "") -> Response:
    """A key for a session cookie. The form must come from this origin (a sign-in forced by
    another site would put the victim in the attacker's session): `Origin: null` (a sandboxed frame,
    a data: URL, a redirect) is another origin. No Origin at all is a client that is not a browser."""
    console = _console(request)
    scheme = console.scheme(request)
    origins = request.headers.getlist("origin")
    fetch_site = request.headers.getlist("sec-fetch-site")
    other_site = len(fetch_site) > 1 or any(site not in ("same-origin", "none") for site in fetch_site)
    if other_site or len(origins) > 1 or (origins and origins[0] != f"{scheme}://{request.url.netloc}"):
        raise Problem(403, "Forbidden", "sign-in from another origin", code="csrf_failed")
    try:
        session_id, _ = await console.sessions.sign_in(session, key)
    except SignInRefused as exc:
        page = console.templates.TemplateResponse(request, "login.html", {"error": str(exc)}, status_code=401)
        return page
    response = RedirectResponse("/console/agents", status_code=303)
    response.set_cookie(
        COOKIE, session_id, httponly=True, samesite="strict", path="/console",
        secure=scheme == "https",
    )
    return response


@router.post("/logout")
async def logout(request: Request, session: Session) -> Response:
    await _changer(request, session)
    _console(request).sessions.drop(request.cookies.get(COOKIE))
    response = JSONResponse({"signed_out": True})
    response.delete_cookie(COOKIE, path="/console")
    return response


@router.get("/agents")
async def agents_page(request: Request, state: State, session: Session) -> Response:
    viewer = await _viewer(request, session)
    if viewer is None:
        return _to_sign_in()
    rows = await agent_rows(session, state.backend, viewer)
    return _page(request, viewer, "agents.html", agents=rows)


@router.get("/agents/{namespace}/{name}")
async def agent_page(namespace: str, name: str, request: Request, state: State, session: Session) -> Response:
    viewer = await _viewer(request, session)
    if viewer is None:
        return _to_sign_in()
    rows = await agent_rows(session, state.backend, viewer, (namespace, name))
    if not rows:
        raise Problem(404, "Agent not found", f"no agent {namespace}/{name}", code="agent_not_found")
    console = _console(request)
    return _page(
        request, viewer, "agent.html", agent=rows[0], charted=console.sampler.enabled,
        host=agent_host(name, namespace, console.domain), can_invoke=console.gateway_url is not None,
    )


@router.get("/agents/{namespace}/{name}/series")
async def agent_series(namespace: str, name: str, request: Request, session: Session) -> Response:
    viewer = await _viewer(request, session)
    if viewer is None or not viewer.sees(namespace, name):
        raise Problem(401, "Sign in", "sign in to the console with an API key", code="sign_in_required")
    return JSONResponse({"points": _console(request).sampler.series(namespace, name)})


@router.get("/agents/{namespace}/{name}/logs")
async def agent_logs(namespace: str, name: str, request: Request, state: State, session: Session) -> Response:
    """The agent's last lines (`par logs --tail 100`), polled by the agent page."""
    viewer = await _viewer(request, session)
    if viewer is None or not viewer.sees(namespace, name):
        raise Problem(401, "Sign in", "sign in to the console with an API key", code="sign_in_required")
    await session.close()
    try:
        records = [r async for r in await state.backend.logs(namespace, name, LogRequest(tail=LOG_LINES))]
    except BackendError as exc:
        return JSONResponse({"lines": [], "error": str(exc)})
    return JSONResponse({"lines": records})


@router.post("/agents/{namespace}/{name}/invoke")
async def invoke(
    namespace: str, name: str, request: Request, session: Session, body: Annotated[Any, Body()] = None
) -> Response:
    """Call the agent's /invoke through the gateway with the signed-in key (its grants, limits
    and audit apply), and answer the gateway's status and body."""
    viewer = await _changer(request, session)
    console = _console(request)
    if console.gateway_url is None:
        raise Problem(409, "No gateway", "set PAR_GATEWAY_URL for the console to call agents",
                      code="no_gateway_url")
    headers = {"Host": agent_host(name, namespace, console.domain), "Authorization": f"Bearer {viewer.key}"}
    try:
        async with httpx.AsyncClient(timeout=60.0) as client:
            reply = await client.post(f"{console.gateway_url}/invoke", json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise Problem(502, "Gateway unreachable", str(exc) or type(exc).__name__,
                      code="gateway_unreachable") from None
    try:
        shown: Any = reply.json()
    except ValueError:
        shown = reply.text
    return JSONResponse({"status": reply.status_code, "body": shown})


@router.put("/agents/{namespace}/{name}/traffic")
async def set_traffic(
    namespace: str, name: str, body: TrafficRequest, request: Request, state: State, session: Session
) -> Response:
    caller = _admin(await _changer(request, session))
    out = await deployments.set_traffic(name, body, state, session, caller, namespace)
    return Response(out.model_dump_json(), media_type="application/json")


@router.post("/agents/{namespace}/{name}/rollback")
async def rollback(namespace: str, name: str, request: Request, state: State, session: Session) -> Response:
    caller = _admin(await _changer(request, session))
    out = await deployments.rollback(name, state, session, caller, namespace)
    return Response(out.model_dump_json(), media_type="application/json")


@router.get("/triggers")
async def triggers_page(request: Request, session: Session) -> Response:
    viewer = await _viewer(request, session)
    if viewer is None:
        return _to_sign_in()
    rows = await trigger_rows(session, _console(request).sampler, viewer)
    return _page(request, viewer, "triggers.html", triggers=rows)


@router.get("/keys")
async def keys_page(request: Request, session: Session) -> Response:
    viewer = await _viewer(request, session)
    if viewer is None:
        return _to_sign_in()
    rows = await key_rows(session) if viewer.admin else []
    shown = [KeyOut.model_validate(r, from_attributes=True) for r in rows]
    return _page(request, viewer, "keys.html", keys=shown)


@router.post("/keys")
async def create_key(body: KeyCreate, request: Request, session: Session) -> Response:
    caller = _admin(await _changer(request, session))
    created = await keys.create_key(body, session, caller)
    return Response(created.model_dump_json(), status_code=201, media_type="application/json")


@router.delete("/keys/{key_id}")
async def revoke_key(key_id: str, request: Request, state: State, session: Session) -> Response:
    caller = _admin(await _changer(request, session))
    revoked = await keys.revoke_key(key_id, state, session, caller)
    return Response(json.dumps({"id": revoked.id, "revoked": revoked.revoked}), media_type="application/json")
