"""What a deploy backend raises when it cannot do what it is asked: the registry maps these to
HTTP answers (`registry.problems`) without importing the backend interface itself."""

from __future__ import annotations


class BackendError(RuntimeError):
    """The backend itself could not be reached or refused the request (maps to HTTP 503)."""


class BackendRejected(BackendError):
    """The backend refused this desired state (e.g. a Kubernetes admission error; maps to HTTP 422)."""


class BackendMissing(BackendRejected):
    """Something the desired state needs is not on the cluster: a kind whose definitions are not
    installed, a namespace the registry may not create. Permanent until someone installs or
    creates it, so never an outage (422 naming what is missing, no Retry-After)."""


class KindNotInstalled(BackendMissing):
    """The API server does not serve this kind (its CRDs are not installed)."""

    def __init__(self, kind: str, api_version: str, install: str) -> None:
        super().__init__(f"{kind} ({api_version}) is not installed on this cluster: install {install}")
        self.kind = kind


class NamespaceMissing(BackendMissing):
    """The namespace does not exist, and the registry may not create it (or has not yet)."""

    def __init__(self, namespace: str, why: str = "") -> None:
        super().__init__(f'namespace "{namespace}" does not exist on the cluster{why}')
        self.namespace = namespace
