"""The one-machine deploy backend: Knative Serving's behaviour with runtime processes.

`Supervisor` runs instances and is the gateway's `Resolver`; `LocalBackend` is the registry's
`DeployBackend` on top of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .backend import LocalBackend
from .settings import LocalSettings
from .spec import RevisionSpec
from .supervisor import Supervisor

if TYPE_CHECKING:
    from registry.settings import RegistrySettings

__all__ = ["LocalBackend", "LocalSettings", "RevisionSpec", "Supervisor", "create_backend"]


def create_backend(settings: RegistrySettings) -> LocalBackend:
    """`PAR_DEPLOY_BACKEND=local` for a registry on its own: the backend runs the processes but
    only a gateway in the same process can route to them, which is what `par up` sets up."""
    supervisor = Supervisor(LocalSettings(data_dir=settings.data_dir))
    return LocalBackend(
        supervisor, url_template=f"http://{{agent}}.{{namespace}}.{settings.domain}", owns_supervisor=True
    )
