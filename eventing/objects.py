"""Knative `eventing.knative.dev/v1` Broker and Trigger objects: validation and what PAR reads from them.

Objects are checked against Knative's real CRD schemas (shipped in `eventing/crds/`) and then
semantically; every refusal is an `InvalidObject` naming the wrong field, like the API server would.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from eventing.filters import FilterError, Matcher, compile_trigger_filter

API_VERSION = "eventing.knative.dev/v1"
ORDER_ANNOTATION = "kafka.eventing.knative.dev/delivery.order"
INITIAL_OFFSET_ANNOTATION = "kafka.eventing.knative.dev/initial-offset"
CLASS_ANNOTATION = "eventing.knative.dev/broker.class"
KAFKA_CLASSES = ("Kafka", "KafkaNamespaced")
RETRYABLE_STATUSES = frozenset({404, 408, 409, 429}) | frozenset(range(500, 600))
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DURATION = TypeAdapter(timedelta)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's when PyYAML was built with it


class InvalidObject(ValueError):
    """A refused object; `field` is the path of the wrong field (e.g. `spec.delivery.backoffDelay`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def topic_name(namespace: str, broker: str) -> str:
    return f"knative-broker-{namespace}-{broker}"


def consumer_group(namespace: str, trigger: str) -> str:
    return f"knative-trigger-{namespace}-{trigger}"


@dataclass(frozen=True)
class Destination:
    """A Knative duck `Destination`: `uri`, or `ref` to a Knative Service (plus an optional `uri` path)."""

    uri: str | None = None
    ref: dict[str, Any] | None = None

    def url(self, template: str, namespace: str) -> str:
        if not self.ref:
            return str(self.uri)
        base = template.format(name=self.ref["name"], namespace=self.ref.get("namespace") or namespace)
        return base.rstrip("/") + "/" + (self.uri or "").lstrip("/") if self.uri else base


@dataclass(frozen=True)
class DeliverySpec:
    """`spec.delivery` after defaults: retries, backoff (seconds), per-request timeout, dead-letter sink."""

    retry: int = 0
    backoff_policy: str = "exponential"
    backoff_delay: float = 0.2
    timeout: float | None = None
    dead_letter_sink: Destination | None = None

    def backoff(self, attempt: int) -> float:
        """Delay before retry number `attempt` (1-based): delay*n linear, delay*2^n exponential (Knative)."""
        if self.backoff_policy == "linear":
            return self.backoff_delay * attempt
        return self.backoff_delay * 2**attempt


@dataclass
class Broker:
    namespace: str
    name: str
    obj: dict[str, Any]
    delivery: dict[str, Any] = field(default_factory=dict)

    @property
    def topic(self) -> str:
        return topic_name(self.namespace, self.name)


@dataclass
class Trigger:
    namespace: str
    name: str
    broker: str
    subscriber: Destination
    matcher: Matcher
    delivery: dict[str, Any]
    ordered: bool
    initial_offset: str
    obj: dict[str, Any]
    _spec: tuple[Broker | None, DeliverySpec] | None = field(default=None, repr=False)

    @property
    def group(self) -> str:
        return consumer_group(self.namespace, self.name)

    def delivery_spec(self, broker: Broker | None) -> DeliverySpec:
        """The Trigger's delivery fields over the Broker's (Knative's inheritance); parsed once per Broker."""
        if self._spec is None or self._spec[0] is not broker:
            merged = {**(broker.delivery if broker else {}), **self.delivery}
            self._spec = (broker, parse_delivery(merged, "spec.delivery"))
        return self._spec[1]


def load_documents(text: str) -> list[dict[str, Any]]:
    """All YAML (or JSON) documents of a config file or request body, empty ones skipped.
    JSON (what the registry sends) is read as JSON: 40x faster than through the YAML parser."""
    try:
        docs = [json.loads(text)] if text.lstrip().startswith("{") else [
            d for d in yaml.load_all(text, Loader=_YAML_LOADER) if d is not None]
    except json.JSONDecodeError as exc:
        raise InvalidObject("body", f"not valid JSON: {exc}") from None
    except yaml.YAMLError as exc:
        raise InvalidObject("body", f"not valid YAML or JSON: {exc}") from None
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict):
            raise InvalidObject(f"document[{i}]", "must be a mapping (a Kubernetes object)")
    return docs


@cache
def _schema(crds_dir: Path, kind: str) -> dict[str, Any]:
    """The CRD's v1 schema; a missing file is an installation error, never a silent skip."""
    path = crds_dir / f"eventing_{kind.lower()}.yaml"
    crd = yaml.safe_load(path.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return version["schema"]["openAPIV3Schema"]


def check_schema(obj: dict[str, Any], kind: str, crds_dir: Path | None) -> None:
    """Validate against the Knative CRD's openAPIV3Schema (`crds_dir` None: callers that have
    already validated, such as objects read back from the admin API's own store)."""
    if crds_dir is None:
        return
    schema = _schema(crds_dir, kind)
    import jsonschema

    error = jsonschema.exceptions.best_match(jsonschema.Draft7Validator(schema).iter_errors(obj))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "(root)"
        raise InvalidObject(where, error.message)


def _metadata(obj: dict[str, Any], kind: str, namespace: str | None, name: str | None) -> tuple[str, str]:
    if obj.get("apiVersion") != API_VERSION:
        raise InvalidObject("apiVersion", f"must be {API_VERSION}, got {obj.get('apiVersion')!r}")
    if obj.get("kind") != kind:
        raise InvalidObject("kind", f"must be {kind}, got {obj.get('kind')!r}")
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise InvalidObject("metadata", "is required")
    obj_ns = meta.get("namespace") or namespace or "default"
    obj_name = meta.get("name") or name
    for key, value in (("metadata.name", obj_name), ("metadata.namespace", obj_ns)):
        if not isinstance(value, str) or not _DNS_LABEL.match(value) or len(value) > 63:
            raise InvalidObject(key, f"{value!r} is not a DNS-1123 label")
    if namespace and obj_ns != namespace:
        raise InvalidObject("metadata.namespace", f"{obj_ns!r} does not match the path's {namespace!r}")
    if name and obj_name != name:
        raise InvalidObject("metadata.name", f"{obj_name!r} does not match the path's {name!r}")
    return str(obj_ns), str(obj_name)


def _duration(value: Any, where: str) -> float:
    try:
        seconds = _DURATION.validate_python(value).total_seconds()
    except ValidationError:
        raise InvalidObject(where, f"{value!r} is not an ISO-8601 duration (e.g. PT0.5S)") from None
    if seconds < 0:
        raise InvalidObject(where, "must not be negative")
    return seconds


def parse_destination(value: Any, where: str) -> Destination:
    if not isinstance(value, dict) or not (value.get("uri") or value.get("ref")):
        raise InvalidObject(where, "needs ref or uri")
    ref = value.get("ref")
    if ref is not None:
        api = str(ref.get("apiVersion", ""))
        if ref.get("kind") != "Service" or not api.startswith("serving.knative.dev/"):
            raise InvalidObject(f"{where}.ref", "must be a Knative Service (serving.knative.dev/v1)")
        if not ref.get("name"):
            raise InvalidObject(f"{where}.ref.name", "is required")
        return Destination(uri=value.get("uri"), ref=dict(ref))
    uri = str(value["uri"])
    if not re.match(r"^https?://[^/\s]+", uri):
        raise InvalidObject(f"{where}.uri", f"{uri!r} is not an absolute http(s) URL")
    return Destination(uri=uri)


def parse_delivery(spec: dict[str, Any], where: str) -> DeliverySpec:
    retry = spec.get("retry", 0)
    if not isinstance(retry, int) or isinstance(retry, bool) or retry < 0:
        raise InvalidObject(f"{where}.retry", "must be a non-negative integer")
    policy = spec.get("backoffPolicy", "exponential")
    if policy not in ("linear", "exponential"):
        raise InvalidObject(f"{where}.backoffPolicy", f"must be linear or exponential, got {policy!r}")
    delay = _duration(spec["backoffDelay"], f"{where}.backoffDelay") if "backoffDelay" in spec else 0.2
    timeout = _duration(spec["timeout"], f"{where}.timeout") if "timeout" in spec else None
    if timeout == 0:
        raise InvalidObject(f"{where}.timeout", "must be positive")
    sink = spec.get("deadLetterSink")
    dls = parse_destination(sink, f"{where}.deadLetterSink") if sink is not None else None
    return DeliverySpec(retry, policy, delay, timeout, dls)


def _identify(
    obj: Any, kind: str, crds_dir: Path | None, namespace: str | None, name: str | None
) -> tuple[str, str]:
    """Kind, metadata and CRD schema checks shared by every object; (namespace, name)."""
    if not isinstance(obj, dict):
        raise InvalidObject("(root)", f"must be a {kind} object")
    ids = _metadata(obj, kind, namespace, name)
    check_schema(obj, kind, crds_dir)
    return ids


def parse_broker(
    obj: Any, crds_dir: Path | None, namespace: str | None = None, name: str | None = None
) -> Broker:
    ns, broker_name = _identify(obj, "Broker", crds_dir, namespace, name)
    broker_class = (obj["metadata"].get("annotations") or {}).get(CLASS_ANNOTATION)
    if broker_class is not None and broker_class not in KAFKA_CLASSES:
        raise InvalidObject(
            f"metadata.annotations.{CLASS_ANNOTATION}", f"{broker_class!r} is not served here (use Kafka)"
        )
    delivery = (obj.get("spec") or {}).get("delivery") or {}
    parse_delivery(delivery, "spec.delivery")
    return Broker(ns, broker_name, _normalized(obj, ns, broker_name), delivery)


def parse_trigger(
    obj: Any, crds_dir: Path | None, namespace: str | None = None, name: str | None = None
) -> Trigger:
    ns, trigger_name = _identify(obj, "Trigger", crds_dir, namespace, name)
    spec = obj.get("spec") or {}
    if not spec.get("broker"):
        raise InvalidObject("spec.broker", "is required")
    subscriber = parse_destination(spec.get("subscriber"), "spec.subscriber")
    delivery = spec.get("delivery") or {}
    parse_delivery(delivery, "spec.delivery")
    try:
        matcher = compile_trigger_filter(spec, ns, trigger_name)
    except FilterError as exc:
        raise InvalidObject(exc.field, str(exc).split(": ", 1)[1]) from None
    annotations = obj["metadata"].get("annotations") or {}
    order = annotations.get(ORDER_ANNOTATION, "unordered")
    if order not in ("ordered", "unordered"):
        raise InvalidObject(f"metadata.annotations.{ORDER_ANNOTATION}", "must be ordered or unordered")
    offset = annotations.get(INITIAL_OFFSET_ANNOTATION, "latest")
    if offset not in ("earliest", "latest"):
        raise InvalidObject(f"metadata.annotations.{INITIAL_OFFSET_ANNOTATION}", "must be earliest or latest")
    return Trigger(
        ns, trigger_name, spec["broker"], subscriber, matcher, delivery, order == "ordered", offset,
        _normalized(obj, ns, trigger_name),
    )


def _normalized(obj: dict[str, Any], namespace: str, name: str) -> dict[str, Any]:
    """The object as stored: metadata filled in, any client-sent status dropped (status is ours)."""
    out = {k: v for k, v in obj.items() if k != "status"}
    out["metadata"] = {**obj["metadata"], "namespace": namespace, "name": name}
    return out
