"""The local Knative Serving: each agent's revisions run as confined runtime processes on this
machine, scaled from and to zero as Knative's activator and autoscaler would.

Public API (other components import only this module):
- `Controller`: apply an agent's revisions and traffic split, remove it, report `ServiceStatus`;
  its `activator` is the gateway's `Resolver` (holds a request while an instance starts).
- `LocalGateway`: the keyless loopback way in for platform parts (event deliveries).
- `prepare`: a package prepared once per SHA-256 at deploy time.
- the API types (`RevisionSpec`, `ServiceStatus`, `RevisionStatus`, `InstanceStatus`) and
  `ServingSettings`.

Inside: `revision` (instances of one revision, autoscaling, crash replacement), `activator`,
`launcher` + `template`/`forkserver` (instances forked from a warm runtime), `instance` (one
process), `traffic` (the split), `metrics`.
"""

from .controller import Controller
from .local_gateway import LocalGateway
from .prepare import PrepareFailed, prepare
from .settings import ServingSettings
from .traffic import TrafficError
from .types import InstanceState, InstanceStatus, RevisionSpec, RevisionStatus, ServiceStatus

__all__ = [
    "Controller",
    "InstanceState",
    "InstanceStatus",
    "LocalGateway",
    "PrepareFailed",
    "RevisionSpec",
    "RevisionStatus",
    "ServiceStatus",
    "ServingSettings",
    "TrafficError",
    "prepare",
]
