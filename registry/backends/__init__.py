"""Deploy backends: where agents run. The interface is `registry.backends.base.DeployBackend`.

`create_backend(settings)` picks one for a registry started on its own (`par registry serve`)
by `PAR_DEPLOY_BACKEND`:
- `recording` (the default): records each desired state and reports it ready, running nothing.
  A registry started alone has no cluster unless told, and a default that needs one would make
  `par registry serve` fail on a laptop; the cluster install (`knative/registry`) sets `knative`.
- `knative`: Knative Services through the Kubernetes API (`KUBECONFIG` or in-cluster config).

The one-machine backend (`registry.backends.local`, a thin adapter over `serving`) is not chosen
here: only `par up` can run it, since only a gateway in the same process can route to its
instances, so `par up` builds it and hands it to the registry.
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
    from registry.backends.recording import RecordingBackend

    return RecordingBackend(domain=settings.domain)
