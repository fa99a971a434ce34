"""Knative objects for a deployment: a `serving.knative.dev/v1` Service, `eventing.knative.dev/v1`
Triggers, and the namespace's Broker of class Kafka. Plain dicts, ready for server-side apply or
`kubectl apply -f -` (see `to_yaml`).

A Service is complete where Knative's defaulting would add to it (the readiness probe's
`successThreshold`/`timeoutSeconds`, the port's `protocol`, `enableServiceLinks`, ...): `containers`
is an atomic list under server-side apply, so a field Knative defaulted and PAR left out would be
removed by the next apply, and the webhook refuses a changed template under an unchanged revision
name. tests/support/knative_defaults.py holds Knative's defaults as facts.

The Service runs the PAR runtime image, which downloads its package from `PACKAGE_URL` and checks
`PACKAGE_SHA256`. Each version is a named revision `{agent}-{version slug}`; the template carries
the newest version that takes traffic, earlier ones are addressed by name in `traffic`.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from registry.knative import resources, yamlout
from registry.settings import RegistrySettings
from registry.spec import DeploymentSpec, Resources, TriggerSpec

SERVING = "serving.knative.dev/v1"
EVENTING = "eventing.knative.dev/v1"
FIELD_MANAGER = "par-registry"
RUNTIME_PORT = 8080
WORK_DIR = "/tmp"
ORDERING_ANNOTATION = "kafka.eventing.knative.dev/delivery.order"
Obj = dict[str, Any]
# Where a deployment asks for none (PAR_RUNTIME_CPU_REQUEST, ..., PAR_RUNTIME_MEMORY_LIMIT).
DEFAULT_RESOURCES = Resources(
    requests={"cpu": "100m", "memory": "256Mi"}, limits={"cpu": "1", "memory": "1Gi"}
)


@dataclass(frozen=True)
class ManifestOptions:
    image: str = "ghcr.io/pixell/par-runtime:0.1.0"
    resources: Resources = DEFAULT_RESOURCES
    broker_config: str = "kafka-broker-config"
    broker_config_namespace: str = "knative-eventing"


def options_from(settings: RegistrySettings) -> ManifestOptions:
    return ManifestOptions(
        image=settings.runtime_image,
        resources=resources.defaults_from(settings),
        broker_config=settings.kafka_broker_config,
    )


def _labels(agent: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": agent,
        "app.kubernetes.io/part-of": "par",
        "app.kubernetes.io/managed-by": FIELD_MANAGER,
        "par.pixell.ai/agent": agent,
    }


def service(spec: DeploymentSpec, options: ManifestOptions = ManifestOptions()) -> Obj:
    serving = [v for v in spec.versions if v.percent > 0] or list(spec.versions)
    current = serving[-1]
    scaling = spec.scaling
    annotations = {"autoscaling.knative.dev/min-scale": str(scaling.min_scale)}
    if scaling.max_scale:
        annotations["autoscaling.knative.dev/max-scale"] = str(scaling.max_scale)
    if scaling.target:
        annotations["autoscaling.knative.dev/target"] = str(scaling.target)
    env: dict[str, str] = {"PAR_RUNTIME_WORK_DIR": f"{WORK_DIR}/par", "HOME": WORK_DIR}
    if spec.k_sink:
        env["K_SINK"] = spec.k_sink
    env.update(spec.env)
    env.update(
        PACKAGE_URL=current.artifact_url,
        PACKAGE_SHA256=current.sha256,
        AGENT_APP_ID=f"{spec.namespace}/{spec.agent}",
    )
    container = _container(env, resources.resolve(spec.resources, options.resources), options)
    labels = _labels(spec.agent)
    service_labels = dict(labels)
    if spec.cluster_local:
        service_labels["networking.knative.dev/visibility"] = "cluster-local"
    return {
        "apiVersion": SERVING,
        "kind": "Service",
        "metadata": {
            "name": spec.agent,
            "namespace": spec.namespace,
            "labels": service_labels,
            "annotations": {"par.pixell.ai/generation": str(spec.generation)},
        },
        "spec": {
            "template": {
                "metadata": {
                    "name": current.revision,
                    "labels": {**labels, "par.pixell.ai/version": current.version},
                    "annotations": annotations,
                },
                "spec": {
                    "containerConcurrency": scaling.container_concurrency,
                    "timeoutSeconds": scaling.timeout_seconds,
                    "enableServiceLinks": False,
                    "containers": [container],
                    "volumes": [{"name": "work", "emptyDir": {}}],
                },
            },
            "traffic": [
                {
                    "revisionName": v.revision,
                    "percent": v.percent,
                    "tag": v.tag,
                    "latestRevision": False,
                }
                for v in spec.versions
            ],
        },
    }


def template_digest(service_obj: Obj) -> str:
    """8 hex digits of a Service's revision template without its name: whatever would make Knative
    refuse the template under an existing revision name (image, env, scaling, resources) changes
    it, and what lives outside the template (visibility, traffic) does not."""
    template = copy.deepcopy(service_obj["spec"]["template"])
    template["metadata"].pop("name", None)
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:8]


def _container(env: dict[str, str], resolved: Resources, options: ManifestOptions) -> Obj:
    return {
        "name": "runtime",
        "image": options.image,
        "ports": [{"name": "http1", "containerPort": RUNTIME_PORT, "protocol": "TCP"}],
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": RUNTIME_PORT},
            "periodSeconds": 1,
            "failureThreshold": 3,
            "timeoutSeconds": 1,
            "successThreshold": 1,
        },
        "resources": {"requests": dict(resolved.requests), "limits": dict(resolved.limits)},
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": "work", "mountPath": WORK_DIR}],
    }


def broker(namespace: str, name: str = "default", options: ManifestOptions = ManifestOptions()) -> Obj:
    return {
        "apiVersion": EVENTING,
        "kind": "Broker",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "par", "app.kubernetes.io/managed-by": FIELD_MANAGER},
            "annotations": {"eventing.knative.dev/broker.class": "Kafka"},
        },
        "spec": {
            "config": {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": options.broker_config,
                "namespace": options.broker_config_namespace,
            }
        },
    }


def trigger(spec: TriggerSpec) -> Obj:
    if spec.subscriber_agent is not None:
        subscriber: Obj = {"ref": {"apiVersion": SERVING, "kind": "Service", "name": spec.subscriber_agent}}
    else:
        subscriber = {"uri": spec.subscriber_uri}
    metadata: Obj = {
        "name": spec.name,
        "namespace": spec.namespace,
        "labels": {"app.kubernetes.io/part-of": "par", "app.kubernetes.io/managed-by": FIELD_MANAGER},
    }
    if spec.ordering:
        metadata["annotations"] = {ORDERING_ANNOTATION: spec.ordering}
    body: Obj = {"broker": spec.broker, "subscriber": subscriber}
    if spec.filters:
        body["filter"] = {"attributes": dict(spec.filters)}
    if spec.dialect_filters:
        body["filters"] = copy.deepcopy(spec.dialect_filters)
    if spec.delivery:
        body["delivery"] = dict(spec.delivery)
    return {"apiVersion": EVENTING, "kind": "Trigger", "metadata": metadata, "spec": body}


def for_agent(
    spec: DeploymentSpec, triggers: Sequence[TriggerSpec] = (), options: ManifestOptions = ManifestOptions()
) -> list[Obj]:
    """The Brokers the Triggers need, the agent's Service, then the Triggers delivering to it.
    The agent's own K_SINK broker is not among them unless a Trigger names it: a Service alone
    applies on a cluster with Knative Serving only (no kind Broker without Eventing)."""
    objects: list[Obj] = []
    brokers = {t.broker for t in triggers}
    objects += [broker(spec.namespace, name, options) for name in sorted(brokers)]
    objects.append(service(spec, options))
    objects += [trigger(t) for t in triggers]
    return objects


def to_yaml(objects: list[Obj]) -> str:
    """A multi-document YAML stream, ready for `kubectl apply -f -`."""
    return yamlout.dump_all(objects)
