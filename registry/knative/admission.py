"""What Knative's admission webhooks would refuse, refused by PAR before anything is stored.

The registry checks the very objects it would apply (`registry.knative.manifests`), so a refusal names
the field as Knative names it (`spec.template.spec.containerConcurrency`) with Knative's message
(`expected 0 <= 2000 <= 1000`). Services follow knative/serving's webhook (`ValidateObjectMetadata`,
`ValidateRevisionName`, `autoscaling.ValidateAnnotations`, `ValidateContainerConcurrency`,
`ValidateTimeoutSeconds`, `k8s_validation.go`; the image reference as go-containerregistry's
`name.ParseReference` with weak validation reads it). Triggers and Brokers are parsed by
`eventing.objects`, the same code `par eventing serve` runs on them (Knative's CRD schema, then
the webhook's rules), so the rules are written once.

Limits that a cluster configures (`config-defaults`: `max-revision-timeout-seconds` 600,
`container-concurrency-max-limit` 1000 by default) come from the registry's settings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from eventing.objects import InvalidObject, parse_broker, parse_trigger
from eventing.settings import PACKAGED_CRDS
from registry.settings import RegistrySettings

MAX_INT32 = 2**31 - 1
TARGET_MIN = 0.01  # autoscaling TargetMin
RESERVED_ENV = frozenset({"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"})
# networking.BackendHTTPPort, BackendHTTP2Port, QueueAdminPort, AutoscalingQueueMetricsPort,
# UserQueueMetricsPort, profiling.ProfilingPort
RESERVED_PORTS = frozenset({8012, 8013, 8022, 9090, 9091, 8008})
PORT_NAMES = ("", "h2c", "http1")
SCALE_ANNOTATIONS = ("autoscaling.knative.dev/min-scale", "autoscaling.knative.dev/max-scale")
TARGET_ANNOTATION = "autoscaling.knative.dev/target"
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS_1035_MESSAGE = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character"
)
_REPOSITORY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-./"
_TAG_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_REGISTRY = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:[0-9]+)?$")


class Refused(ValueError):
    """Knative would refuse the object: `field` is the path Knative names, `message` its words."""

    def __init__(self, field: str, message: str, details: str | None = None) -> None:
        super().__init__(f"{message}: {field}" + (f" ({details})" if details else ""))
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Limits:
    """The cluster's `config-defaults` limits, at Knative's defaults unless configured."""

    max_revision_timeout_seconds: int = 600
    container_concurrency_max_limit: int = 1000


def limits_from(settings: RegistrySettings) -> Limits:
    return Limits(settings.max_revision_timeout_seconds, settings.container_concurrency_max_limit)


def _out_of_bounds(value: object, low: object, high: object, field: str) -> Refused:
    return Refused(field, f"expected {low} <= {value} <= {high}")


def _dns_1035(name: Any, field: str) -> None:
    if not isinstance(name, str) or not _DNS_1035.match(name):
        raise Refused(field, f"not a DNS 1035 label: [{_DNS_1035_MESSAGE}]")
    if len(name) > 63:
        raise Refused(field, "not a DNS 1035 label: [must be no more than 63 characters]")


def image_problem(image: str) -> str | None:
    """Why go-containerregistry's `ParseReference` (weak validation) refuses `image`, or None."""
    base, at, digest = image.partition("@")
    if at and (not _DIGEST.match(digest) or "@" in digest):
        return f"digest must be sha256: and 64 lowercase hex digits: {digest}"
    head, colon, tag = base.rpartition(":")
    if colon and "/" not in tag:
        base = head
        if not tag:
            return "must specify a tag name after the colon"
        if len(tag) > 128 or any(c not in _TAG_CHARS for c in tag):
            return f"tag can only contain the characters `{_TAG_CHARS}` (at most 128): {tag}"
    registry, slash, repository = base.partition("/")
    if not (slash and ("." in registry or ":" in registry)):
        registry, repository = "", base
    elif not _REGISTRY.match(registry):
        return f"registries must be valid RFC 3986 URI authorities: {registry}"
    if not 2 <= len(repository) <= 255:
        return f"repository must be between 2 and 255 characters in length: {repository}"
    if any(c not in _REPOSITORY_CHARS for c in repository):
        return f"repository can only contain the characters `{_REPOSITORY_CHARS}`: {repository}"
    return None


def _scale(annotations: dict[str, str], key: str, where: str) -> int:
    value = annotations.get(key)
    if value is None:
        return 0
    try:
        number = int(value, 10)
    except (TypeError, ValueError):
        raise Refused(f"{where}.{key}", f"invalid value: {value}") from None
    if not 0 <= number <= MAX_INT32:
        raise _out_of_bounds(value, 0, MAX_INT32, f"{where}.{key}")
    return number


def _check_annotations(annotations: dict[str, str], where: str) -> None:
    low, high = (_scale(annotations, key, where) for key in SCALE_ANNOTATIONS)
    if high != 0 and high < low:
        raise Refused(
            ", ".join(f"{where}.{key}" for key in reversed(SCALE_ANNOTATIONS)),
            f"max-scale={high} is less than min-scale={low}",
        )
    target = annotations.get(TARGET_ANNOTATION)
    if target is not None:
        try:
            value = float(target)
        except ValueError:
            raise Refused(f"{where}.{TARGET_ANNOTATION}", f"invalid value: {target}") from None
        if value < TARGET_MIN:
            raise Refused(f"{where}.{TARGET_ANNOTATION}", f"target {target} should be at least {TARGET_MIN}")


def _check_container(container: dict[str, Any], where: str) -> None:
    image = container.get("image") or ""
    if not image:
        raise Refused(f"{where}.image", "missing field(s)")
    problem = image_problem(image)
    if problem:
        details = f'image: "{image}", error: could not parse reference: {image}: {problem}'
        raise Refused(f"{where}.image", "Failed to parse image reference", details)
    for i, env in enumerate(container.get("env") or []):
        if env.get("name") in RESERVED_ENV:
            raise Refused(f"{where}.env[{i}].name", f'"{env["name"]}" is a reserved environment variable')
    ports = container.get("ports") or []
    if len(ports) > 1:
        raise Refused(f"{where}.ports", "More than one container port is set")
    for port in ports:
        number = port.get("containerPort", 0)
        if number in RESERVED_PORTS:
            raise Refused(f"{where}.ports.containerPort", f"invalid value: {number}")
        if not 0 <= number <= 65535:
            raise _out_of_bounds(number, 0, 65535, f"{where}.ports.containerPort")
        if port.get("name", "") not in PORT_NAMES:
            raise Refused(f"{where}.ports", f"Port name {port['name']} is not allowed")


def check_service(obj: dict[str, Any], limits: Limits = Limits()) -> None:
    """Raise `Refused` for the first rule of Knative's Service webhook that `obj` breaks."""
    service_name = obj.get("metadata", {}).get("name")
    _dns_1035(service_name, "metadata.name")
    template = obj.get("spec", {}).get("template", {})
    revision = template.get("metadata", {}).get("name")
    if revision is not None:
        _dns_1035(revision, "spec.template.metadata.name")
        if not revision.startswith(f"{service_name}-"):
            raise Refused(
                "spec.template.metadata.name",
                f'invalid value: "{revision}" must have prefix "{service_name}-"',
            )
    annotations = template.get("metadata", {}).get("annotations") or {}
    _check_annotations(annotations, "spec.template.metadata.annotations")
    spec = template.get("spec", {})
    concurrency = spec.get("containerConcurrency")
    if concurrency is not None and not 0 <= concurrency <= limits.container_concurrency_max_limit:
        raise _out_of_bounds(
            concurrency, 0, limits.container_concurrency_max_limit, "spec.template.spec.containerConcurrency"
        )
    timeout = spec.get("timeoutSeconds")
    if timeout and not 0 <= timeout <= limits.max_revision_timeout_seconds:
        limit = limits.max_revision_timeout_seconds
        raise _out_of_bounds(timeout, 0, limit, "spec.template.spec.timeoutSeconds")
    for i, container in enumerate(spec.get("containers") or []):
        _check_container(container, f"spec.template.spec.containers[{i}]")
    _check_traffic(obj.get("spec", {}).get("traffic") or [])


def _check_traffic(traffic: list[dict[str, Any]]) -> None:
    """Route rules (route_validation.go): tags are unique DNS-1035 labels, percents sum to 100."""
    tagged: dict[str, int] = {}
    for i, target in enumerate(traffic):
        tag = target.get("tag")
        if not tag:
            continue
        _dns_1035(tag, f"spec.traffic[{i}].tag")
        if tag in tagged:
            where = f"spec.traffic[{i}].tag, spec.traffic[{tagged[tag]}].tag"
            raise Refused(where, f'Multiple definitions for "{tag}"')
        tagged[tag] = i
    total = sum(target.get("percent") or 0 for target in traffic)
    if traffic and total != 100:
        raise Refused("spec.traffic", f"Traffic targets sum to {total}, want 100")


def _eventing(parse: Any, obj: dict[str, Any]) -> None:
    try:
        parse(obj, PACKAGED_CRDS)
    except InvalidObject as exc:
        raise Refused(exc.field, exc.message) from None


def check_trigger(obj: dict[str, Any]) -> None:
    """Raise `Refused` where Knative's Trigger CRD or webhook (as `eventing.objects` runs them) would."""
    _eventing(parse_trigger, obj)


def check_broker(obj: dict[str, Any]) -> None:
    """Raise `Refused` where Knative's Broker CRD or webhook (as `eventing.objects` runs them) would."""
    _eventing(parse_broker, obj)


def check(objects: list[dict[str, Any]], limits: Limits = Limits()) -> None:
    """Every object of a `par manifests` stream, by kind."""
    checks = {"Service": lambda o: check_service(o, limits), "Trigger": check_trigger, "Broker": check_broker}
    for obj in objects:
        checks[obj["kind"]](obj)
