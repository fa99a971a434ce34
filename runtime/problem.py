"""PAR's one error shape for its own HTTP APIs: RFC 9457 `application/problem+json`.

Every error body of the runtime, the gateway and the registry has `type`, `title`, `status`,
`detail` and a stable machine-readable `code` (docs/errors.md lists them all); extension members
may follow. Clients branch on `code`, never on `title` or `detail`, which are for people.
Kubernetes-shaped paths (the eventing admin API) answer Kubernetes `Status` objects instead.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

MEDIA_TYPE = "application/problem+json"


def problem(
    status: int, code: str, detail: str | None = None, title: str | None = None, **extra: Any
) -> dict[str, Any]:
    """The problem object. `title` defaults to the status phrase (`Not Found`, ...)."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or _phrase(status),
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    body.update(extra)
    return body


def problem_bytes(status: int, code: str, detail: str | None = None, **extra: Any) -> bytes:
    """The problem object as JSON bytes, for plain ASGI apps (the gateway's hot path)."""
    return json.dumps(problem(status, code, detail, **extra), separators=(",", ":")).encode()


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
