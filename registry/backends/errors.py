"""What a deploy backend raises when it cannot do what it is asked: the registry maps these to
HTTP answers (`registry.problems`) without importing the backend interface itself."""

from __future__ import annotations


class BackendError(RuntimeError):
    """The backend itself could not be reached or refused the request (maps to HTTP 503)."""


class BackendRejected(BackendError):
    """The backend refused this desired state (e.g. a Kubernetes admission error; maps to HTTP 422)."""
