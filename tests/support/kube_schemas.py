"""Validate generated objects the way a Kubernetes API server would, without one.

- Knative objects: against the `openAPIV3Schema` of Knative's real CRDs in `../shared/knative-crds/`,
  made strict the way the API server's pruning is (an unknown field is an error here, where the
  server would silently drop it), and with `x-kubernetes-int-or-string` honoured.
- Core objects: `kubernetes-validate` (Kubernetes' own OpenAPI schemas), strict.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

CRD_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "knative-crds"
K8S_VERSION = "1.30.0"
_KNATIVE_ONLY = {"containerConcurrency", "timeoutSeconds"}
_ROOT_FIELDS = {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}}


def _strict(schema: Any) -> Any:
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if schema.get("x-kubernetes-int-or-string"):
            schema.pop("type", None)
            schema["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> strict JSON schema, from every CRD in the folder."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = doc["spec"]["group"], doc["spec"]["names"]["kind"]
            for version in doc["spec"]["versions"]:
                schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                # The API server always accepts these at the root, listed in the CRD or not.
                schema.setdefault("properties", {}).update(_ROOT_FIELDS)
                found[(f"{group}/{version['name']}", kind)] = _strict(schema)
    return found


def validate_knative(obj: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError if the Knative CRD schema rejects `obj`; skip without CRDs."""
    import jsonschema

    if not CRD_DIR.is_dir():
        pytest.skip(f"{CRD_DIR} absent: Knative CRD schemas unavailable")
    schema = crd_schemas()[(obj["apiVersion"], obj["kind"])]
    jsonschema.validate(obj, schema, cls=jsonschema.Draft7Validator)


def validate_core(obj: dict[str, Any]) -> None:
    """Raise if Kubernetes' own schema (kubernetes-validate, strict) rejects a core object."""
    import kubernetes_validate

    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def as_pod(service: dict[str, Any]) -> dict[str, Any]:
    """The Pod a Knative Service's template becomes, to check its PodSpec against core schemas."""
    template = service["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": template["metadata"]["name"], "labels": template["metadata"]["labels"]},
        "spec": {k: v for k, v in template["spec"].items() if k not in _KNATIVE_ONLY},
    }
