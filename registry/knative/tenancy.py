"""What fences a tenant's agent namespace on Kubernetes, applied by the Knative backend when the
namespace gets its first agent (and shipped as `knative/tenant/` for `kubectl apply -k`):

- a `NetworkPolicy` that lets agent pods accept traffic only from the ingress (Kourier's
  `kourier-system`, Istio's ingress gateway in `istio-system`, Contour's `contour-external`/
  `contour-internal`/`projectcontour`, Envoy Gateway's `envoy-gateway-system`: the namespaces of
  `PAR_TENANT_INGRESS_NAMESPACES`, or any namespace labelled as `PAR_TENANT_INGRESS_NAMESPACE_LABELS`
  says, `par.pixell.ai/ingress=true` by default), Knative Serving's activator and
  autoscaler (`knative-serving`) and the eventing dispatcher (`knative-eventing`). Another agent,
  in this namespace or another, cannot call an agent's pod directly: it goes through the ingress,
  where the gateway authenticates and rate-limits it. (The registry's database and Redis in
  `par-system` are fenced by `knative/dev`'s policy, which admits only `par-system`'s pods.)
- a `ResourceQuota` (`PAR_TENANT_QUOTA`, Kubernetes' `hard` keys) bounding the namespace's total;
- a `LimitRange` whose defaults are the platform's (`PAR_RUNTIME_*`) and whose `max` is the most
  a deployment may ask for (`PAR_MAX_CPU_LIMIT`, `PAR_MAX_MEMORY_LIMIT`), so a pod created around
  the registry is held to what the registry enforces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from registry.knative import resources
from registry.knative.manifests import FIELD_MANAGER
from registry.settings import RegistrySettings
from registry.spec import Resources

Obj = dict[str, Any]
NAMESPACE_LABEL = "kubernetes.io/metadata.name"  # set by Kubernetes on every namespace (1.22+)
POLICY = "par-agents-ingress"
QUOTA = "par-tenant-quota"
LIMITS = "par-tenant-limits"


@dataclass(frozen=True)
class TenantOptions:
    """From the registry's settings (`options_from`)."""

    ingress_namespaces: tuple[str, ...]
    ingress_namespace_labels: dict[str, str]
    quota: dict[str, str]
    defaults: Resources
    maximum: dict[str, str]


def options_from(settings: RegistrySettings) -> TenantOptions:
    return TenantOptions(
        ingress_namespaces=tuple(settings.tenant_ingress_namespaces),
        ingress_namespace_labels=dict(settings.tenant_ingress_namespace_labels),
        quota=dict(settings.tenant_quota),
        defaults=resources.defaults_from(settings),
        maximum=resources.maximum_from(settings),
    )


def _metadata(name: str, namespace: str) -> Obj:
    labels = {"app.kubernetes.io/part-of": "par", "app.kubernetes.io/managed-by": FIELD_MANAGER}
    return {"name": name, "namespace": namespace, "labels": labels}


def network_policy(namespace: str, options: TenantOptions) -> Obj:
    """Every pod of the namespace admits only the ingress, Knative's activator and the dispatcher:
    the namespaces named, and those carrying the ingress labels (peers of one rule are ORed)."""
    peers: list[Obj] = []
    if options.ingress_namespaces:
        peers.append(
            {
                "namespaceSelector": {
                    "matchExpressions": [
                        {"key": NAMESPACE_LABEL, "operator": "In", "values": list(options.ingress_namespaces)}
                    ]
                }
            }
        )
    if options.ingress_namespace_labels:
        peers.append({"namespaceSelector": {"matchLabels": dict(options.ingress_namespace_labels)}})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(POLICY, namespace),
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            # No peer at all admits nothing (an empty `from` would admit every source).
            "ingress": [{"from": peers}] if peers else [],
        },
    }


def namespace(name: str) -> Obj:
    """A tenant namespace the registry creates when an agent is deployed to one that is missing."""
    labels = {"app.kubernetes.io/part-of": "par", "app.kubernetes.io/managed-by": FIELD_MANAGER}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def resource_quota(namespace: str, options: TenantOptions) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": _metadata(QUOTA, namespace),
        "spec": {"hard": dict(options.quota)},
    }


def limit_range(namespace: str, options: TenantOptions) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": _metadata(LIMITS, namespace),
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "default": dict(options.defaults.limits),
                    "defaultRequest": dict(options.defaults.requests),
                    "max": dict(options.maximum),
                }
            ]
        },
    }


def for_namespace(namespace: str, options: TenantOptions) -> list[Obj]:
    """The objects a tenant namespace gets, in the order they are applied."""
    return [make(namespace, options) for make in (network_policy, resource_quota, limit_range)]
