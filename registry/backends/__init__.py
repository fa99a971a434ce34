"""Deploy backends: where agents run. The interface is `registry.backends.base.DeployBackend`.

`create_backend(settings)` picks one by `PAR_DEPLOY_BACKEND`:
- `recording` (default until the one-machine backend lands): records, reports ready, runs nothing;
- `knative`: Knative Services through the Kubernetes API (`KUBECONFIG` or in-cluster config);
- `local`: `registry.backends.local.create_backend(settings)`, runtime processes on this machine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from registry.backends.base import DeployBackend
    from registry.settings import RegistrySettings


def create_backend(settings: RegistrySettings) -> DeployBackend:
    if settings.deploy_backend == "knative":
        from registry.backends.knative import KnativeBackend

        return KnativeBackend.from_settings(settings)
    if settings.deploy_backend == "local":
        from registry.backends import local

        return local.create_backend(settings)  # type: ignore[attr-defined]
    from registry.backends.recording import RecordingBackend

    return RecordingBackend(domain=settings.domain)
