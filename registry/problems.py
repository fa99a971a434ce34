"""RFC 9457 problem details: every registry error is `application/problem+json` (`runtime.problem`).

Raise `Problem(status, title, detail, code=...)` anywhere in a request; `code` is the stable,
documented one (docs/errors.md). `install(app)` also maps FastAPI's errors (unknown route,
validation), package rejections (`runtime.apkg.ApkgError`, 422 with its code), database outages
(503, the transaction rolled back) and deploy-backend outages (503).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from registry.backends.errors import BackendError, BackendMissing, BackendRejected, NamespaceMissing
from runtime.problem import MEDIA_TYPE, problem

log = logging.getLogger("registry.problems")


class Problem(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
        *,
        code: str,
        **extra: object,
    ) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail, self.code, self.extra = status, title, detail, code, extra
        self.headers = headers


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    headers: Mapping[str, str] | None = None,
    *,
    code: str,
    **extra: object,
) -> JSONResponse:
    body = problem(status, code, detail, title=title, **extra)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _is_outage(exc: BaseException) -> bool:
    """A database that cannot be reached or is locked, as opposed to a bug or a constraint."""
    if isinstance(exc, sa_exc.IntegrityError):
        return False
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OSError | TimeoutError)


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.title, exc.detail, exc.headers, code=exc.code, **exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = str(exc.detail).lower().replace(" ", "_")  # "Not Found" -> not_found
        return problem_response(exc.status_code, str(exc.detail), headers=exc.headers, code=code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(err.get("loc", ())), "msg": err.get("msg"), "type": err.get("type")}
            for err in exc.errors()
        ]
        detail = errors[0]["msg"] if errors else None
        return problem_response(422, "Invalid request", detail, code="invalid_request", errors=errors)

    @app.exception_handler(BackendMissing)
    async def _missing(_: Request, exc: BackendMissing) -> JSONResponse:
        title = "Missing on the cluster"
        if isinstance(exc, NamespaceMissing):
            return problem_response(422, title, str(exc), code="namespace_not_found", namespace=exc.namespace)
        return problem_response(422, title, str(exc), code="kind_not_installed")

    @app.exception_handler(BackendRejected)
    async def _rejected(_: Request, exc: BackendRejected) -> JSONResponse:
        return problem_response(422, "Refused by the deploy backend", str(exc), code="backend_rejected")

    @app.exception_handler(BackendError)
    async def _backend(_: Request, exc: BackendError) -> JSONResponse:
        log.warning("deploy backend unavailable", extra={"error": str(exc)})
        return problem_response(
            503, "Deploy backend unavailable", str(exc), {"Retry-After": "5"}, code="backend_unavailable"
        )

    async def _database(_: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, sa_exc.IntegrityError):
            # Two writers raced for the same name; the loser sees what a sequential caller would.
            detail = "a concurrent change created the same object; retry"
            return problem_response(409, "Conflict", detail, code="conflict")
        if _is_outage(exc):
            log.warning("database unavailable", extra={"error": repr(exc)[:500]})
            return problem_response(
                503,
                "Database unavailable",
                "The registry database did not answer; nothing was changed.",
                headers={"Retry-After": "5"},
                code="database_unavailable",
            )
        log.error("database error", exc_info=exc)
        return problem_response(500, "Internal error", code="internal_error")

    for outage in (sa_exc.DBAPIError, sa_exc.TimeoutError, OSError, TimeoutError):
        app.add_exception_handler(outage, _database)
