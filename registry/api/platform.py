"""Endpoints for the rest of the platform: the gateway's snapshot feed, artifact downloads, probes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response
from fastapi.responses import FileResponse
from sqlalchemy import text

from registry import feed
from registry.api.deps import FeedReader, Session, State
from registry.problems import Problem
from registry.schemas import Snapshot

router = APIRouter()


def _etag(revision: str) -> str:
    return f'"{revision}"'


@router.get(
    "/v1/gateway/snapshot",
    tags=["gateway"],
    response_model=Snapshot,
    responses={304: {"description": "unchanged"}},
)
async def gateway_snapshot(
    session: Session, _: FeedReader, if_none_match: Annotated[str | None, Header()] = None
) -> Response:
    """Every key (hash only) and every agent's policy, versioned by `revision` (also the ETag).

    Send the last ETag (quoted or bare) as If-None-Match to get 304 while nothing changed.
    """
    current = await feed.revision(session)
    seen = {tag.strip().removeprefix("W/").strip('"') for tag in (if_none_match or "").split(",")}
    if current in seen:
        return Response(status_code=304, headers={"ETag": _etag(current)})
    body = await feed.snapshot(session)
    return Response(
        body.model_dump_json(),
        media_type="application/json",
        headers={"ETag": _etag(body.revision), "Cache-Control": "no-cache"},
    )


@router.get("/v1/artifacts/{sha256}", tags=["artifacts"], response_class=FileResponse)
async def get_artifact(sha256: str, state: State) -> FileResponse:
    """The APKG with this sha256 (what runtimes download as PACKAGE_URL). Content-addressed and
    immutable, so it needs no key: knowing the hash is knowing what you get."""
    path = state.store.path(sha256)
    if not path.is_file():
        raise Problem(
            404, "Artifact not found", f"no package with sha256 {sha256}", code="artifact_not_found"
        )
    return FileResponse(
        path,
        media_type="application/zip",
        filename=f"{sha256}.apkg",
        headers={"Cache-Control": "public, max-age=31536000, immutable", "ETag": _etag(sha256)},
    )


@router.get("/healthz", tags=["probes"])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", tags=["probes"])
async def readyz(session: Session) -> dict[str, str]:
    """Ready when the database answers (503 problem otherwise, via the outage handler)."""
    await session.execute(text("SELECT 1"))
    return {"status": "ready"}
