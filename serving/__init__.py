"""The local Knative Serving: each agent's revisions run as confined runtime processes on this
machine, scaled from and to zero as Knative's activator and autoscaler would.

Public API (other components import only this module):
- `Controller`: apply an agent's revisions and traffic split, remove it, report `ServiceStatus`;
  its `activator` is the gateway's `Resolver` (holds a request while an instance starts).
- `LocalGateway`: the keyless loopback way in for platform parts (event deliveries).
- `GrpcFront`: the keyless loopback gRPC way in (`pixell.agent.AgentService`, agent by metadata).
- `Preparer` (a `Controller`'s `preparer`): a package prepared once per SHA-256 at deploy time, confined.
- `LogQuery`, `read_logs`, `follow_logs`: instances' output, stamped with instance and version
  (`<data dir>/logs/`, rotated by `PAR_LOG_MAX_BYTES` / `PAR_LOG_MAX_FILES`).
- the API types (`RevisionSpec`, `Limits`, `ServiceStatus`, `RevisionStatus`, `InstanceStatus`) and
  `ServingSettings`.

Inside: `revision` (instances of one revision, autoscaling, crash replacement), `activator`,
`launcher` + `template`/`forkserver` (instances forked from a warm runtime), `sandbox` +
`landlock`/`cgroups` (confinement), `instance` (one process), `traffic` (the split), `metrics`.

The names load on first use: `python -m serving.forkserver`, the runtime template every instance
is forked from, imports this package, and must not carry the gateway's HTTP client into each fork.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .controller import Controller
    from .grpc_front import GrpcFront
    from .local_gateway import LocalGateway
    from .logs import LogQuery, follow_logs, read_logs
    from .preparation import PrepareFailed, Preparer
    from .sandbox import IsolationRequired
    from .settings import ServingSettings
    from .traffic import TrafficError
    from .types import InstanceState, InstanceStatus, Limits, RevisionSpec, RevisionStatus, ServiceStatus

__all__ = [
    "Controller",
    "GrpcFront",
    "InstanceState",
    "InstanceStatus",
    "IsolationRequired",
    "Limits",
    "LocalGateway",
    "LogQuery",
    "PrepareFailed",
    "Preparer",
    "RevisionSpec",
    "RevisionStatus",
    "ServiceStatus",
    "ServingSettings",
    "TrafficError",
    "follow_logs",
    "read_logs",
]
_TYPES = ("InstanceState", "InstanceStatus", "Limits", "RevisionSpec", "RevisionStatus", "ServiceStatus")
_WHERE = {
    "Controller": "controller",
    "LocalGateway": "local_gateway",
    "LogQuery": "logs",
    "follow_logs": "logs",
    "read_logs": "logs",
    "GrpcFront": "grpc_front",
    "IsolationRequired": "sandbox",
    "PrepareFailed": "preparation",
    "Preparer": "preparation",
    "ServingSettings": "settings",
    "TrafficError": "traffic",
    **dict.fromkeys(_TYPES, "types"),
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'serving' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
