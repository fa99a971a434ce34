"""What a Knative API server adds to a `serving.knative.dev/v1` Service before storing it, as facts.

Two sources fill in fields, in this order:
1. The API server applies the CRD's structural defaults (`default:` in the openAPIV3Schema of
   `../shared/knative-crds/`, copied from knative/serving commit 98e5ef90aa70): a container port's
   `protocol: TCP`, and `""` for some reference names PAR never sends.
2. Knative's defaulting webhook (knative/serving `pkg/apis/serving/v1/revision_defaults.go`, with
   `pkg/apis/config/defaults.go` and the `config-defaults` ConfigMap at its shipped values), as of
   the same snapshot (Knative Serving 1.2x). The facts, each stated in `FACTS` below:
   - `timeoutSeconds` nil or 0 -> `revision-timeout-seconds` (300); `containerConcurrency` nil ->
     `container-concurrency` (0); `idleTimeoutSeconds`/`responseStartTimeoutSeconds` stay unset
     (their config-defaults are 0).
   - one container without a name -> `container-name-template` (`user-container`).
   - resources: cpu/memory/ephemeral-storage requests and limits from `revision-*-request|limit`
     (none by default); `requests: {}`/`limits: {}` are created when absent.
   - the serving container's readiness probe: created if absent (`tcpSocket: {}` when no handler);
     `successThreshold` 0 -> 1; when `periodSeconds` is set (Kubernetes-style probing, since
     knative/serving#10700, v0.21): `failureThreshold` 0 -> 3, `timeoutSeconds` 0 -> 1.
   - `enableServiceLinks` nil -> `enable-service-links` (false), on create only.
   - a volume mount of a volume that is not `emptyDir`/`persistentVolumeClaim` -> `readOnly: true`.
   - `secure-pod-defaults` (`disabled` by default; `root-allowed`/`enabled`): when on, unset
     `allowPrivilegeEscalation` -> false, `seccompProfile.type` -> `RuntimeDefault` (without a pod
     one), `capabilities` nil -> `drop: [ALL]` (+ `NET_BIND_SERVICE` for a port below 1024), and with
     `enabled` `runAsNonRoot` -> true.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import yaml

from tests.support.kube_schemas import CRD_DIR

KNATIVE_SNAPSHOT = "knative/serving 98e5ef90aa70 (the CRDs in ../shared/knative-crds)"
FACTS: dict[str, Any] = {
    "revision-timeout-seconds": 300,
    "max-revision-timeout-seconds": 600,
    "container-concurrency": 0,
    "container-concurrency-max-limit": 1000,
    "container-name-template": "user-container",
    "enable-service-links": False,
    "revision-idle-timeout-seconds": 0,
    "revision-response-start-timeout-seconds": 0,
    "readinessProbe.successThreshold": 1,
    "readinessProbe.failureThreshold (periodSeconds set)": 3,
    "readinessProbe.timeoutSeconds (periodSeconds set)": 1,
    "resources (revision-cpu-request ... revision-ephemeral-storage-limit)": None,  # unset by default
    "secure-pod-defaults": "disabled",
    "crd default containers[].ports[].protocol": "TCP",
}


@cache
def _service_schema() -> dict[str, Any]:
    crd = yaml.safe_load((CRD_DIR / "serving.knative.dev_services.yaml").read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return version["schema"]["openAPIV3Schema"]


def apply_schema_defaults(obj: Any, schema: dict[str, Any]) -> None:
    """Structural defaulting as the API server does it: a missing property with a `default` gets it."""
    if isinstance(obj, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name not in obj and "default" in sub:
                obj[name] = copy.deepcopy(sub["default"])
            if name in obj:
                apply_schema_defaults(obj[name], sub)
    elif isinstance(obj, list) and "items" in schema:
        for item in obj:
            apply_schema_defaults(item, schema["items"])


def _probe(container: dict[str, Any]) -> None:
    probe = container.setdefault("readinessProbe", {})
    if not any(handler in probe for handler in ("tcpSocket", "httpGet", "exec", "grpc")):
        probe["tcpSocket"] = {}
    if not probe.get("successThreshold"):
        probe["successThreshold"] = FACTS["readinessProbe.successThreshold"]
    if probe.get("periodSeconds"):
        if not probe.get("failureThreshold"):
            probe["failureThreshold"] = FACTS["readinessProbe.failureThreshold (periodSeconds set)"]
        if not probe.get("timeoutSeconds"):
            probe["timeoutSeconds"] = FACTS["readinessProbe.timeoutSeconds (periodSeconds set)"]


def knative_defaulted(
    service: dict[str, Any], *, create: bool = True, secure_pod_defaults: str = "disabled"
) -> dict[str, Any]:
    """The Service as Knative would store it: CRD defaults, then the webhook's SetDefaults."""
    out = copy.deepcopy(service)
    apply_schema_defaults(out, _service_schema())
    spec = out["spec"]["template"]["spec"]
    if not spec.get("timeoutSeconds"):
        spec["timeoutSeconds"] = FACTS["revision-timeout-seconds"]
    spec.setdefault("containerConcurrency", FACTS["container-concurrency"])
    containers = spec.get("containers") or []
    if create and "enableServiceLinks" not in spec:
        spec["enableServiceLinks"] = FACTS["enable-service-links"]
    volumes = spec.get("volumes") or []
    writable = {v["name"] for v in volumes if "emptyDir" in v or "persistentVolumeClaim" in v}
    for container in containers:
        if len(containers) == 1 and not container.get("name"):
            container["name"] = FACTS["container-name-template"]
        resources = container.setdefault("resources", {})
        resources.setdefault("requests", {})
        resources.setdefault("limits", {})
        if len(containers) == 1 or container.get("ports"):
            _probe(container)
        for mount in container.get("volumeMounts") or []:
            if mount["name"] not in writable:
                mount["readOnly"] = True
        if secure_pod_defaults in ("root-allowed", "enabled"):
            context = container.setdefault("securityContext", {})
            context.setdefault("allowPrivilegeEscalation", False)
            context.setdefault("seccompProfile", {}).setdefault("type", "RuntimeDefault")
            if "capabilities" not in context:
                low = any(p.get("containerPort", 0) < 1024 for p in container.get("ports") or [])
                context["capabilities"] = {"drop": ["ALL"], **({"add": ["NET_BIND_SERVICE"]} if low else {})}
            if secure_pod_defaults == "enabled":
                context.setdefault("runAsNonRoot", True)
    return out
