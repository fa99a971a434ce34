"""The one-machine deploy backend: Knative Serving's behaviour with runtime processes.

`Supervisor` runs instances and is the gateway's `Resolver`; `LocalBackend` is the registry's
`DeployBackend` on top of it.
"""

from .backend import LocalBackend
from .settings import LocalSettings
from .spec import RevisionSpec
from .supervisor import Supervisor

__all__ = ["LocalBackend", "LocalSettings", "RevisionSpec", "Supervisor"]
