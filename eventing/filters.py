"""Trigger filters: `spec.filter.attributes` (exact, ANDed) and `spec.filters` (the new dialects).

A filter compiles once into a function of the event's attributes (their wire strings). Errors are
`FilterError` with the field path, so the admin API can name the wrong field. A CESQL filter whose
evaluation fails does not match and is counted in `par_eventing_filter_errors_total`, as Knative
counts and drops it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from eventing import metrics
from eventing.cesql import EvaluationError, UnsupportedCesql, compile_expression

Matcher = Callable[[dict[str, str]], bool]
OnError = Callable[[EvaluationError], None]
_SINGLE_PAIR = ("exact", "prefix", "suffix")
DIALECTS = (*_SINGLE_PAIR, "all", "any", "not", "cesql")
# Knative's webhook: "Only allow lowercase alphanumeric, starting with letters" (trigger_validation.go).
ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9]*$")


class FilterError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def match_all(_: dict[str, str]) -> bool:
    return True


def check_attribute_name(name: str, field: str) -> None:
    if not ATTRIBUTE_NAME.match(name):
        raise FilterError(
            field,
            f'invalid key name "{name}": attribute names must start with a letter and can only '
            "contain lowercase alphanumeric characters",
        )


def compile_attributes(attributes: dict[str, Any] | None, field: str = "spec.filter.attributes") -> Matcher:
    """Legacy filter: every attribute equal; an empty value matches any value (Knative's "any")."""
    wanted = {k: str(v) for k, v in (attributes or {}).items()}
    for name in wanted:
        check_attribute_name(name, f"{field}.{name}")

    def matches(event: dict[str, str]) -> bool:
        return all(v == "" or event.get(k) == v for k, v in wanted.items())

    return matches


def compile_filters(
    filters: list[Any], field: str = "spec.filters", on_error: OnError | None = None
) -> Matcher:
    """All filters in the list must match (an empty list matches everything)."""
    if not isinstance(filters, list):
        raise FilterError(field, "must be a list of filters")
    compiled = [compile_filter(f, f"{field}[{i}]", on_error) for i, f in enumerate(filters)]
    return lambda event: all(m(event) for m in compiled)


def compile_filter(spec: Any, field: str, on_error: OnError | None = None) -> Matcher:
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in DIALECTS:
        raise FilterError(field, f"must have exactly one of {', '.join(DIALECTS)}")
    dialect, value = next(iter(spec.items()))
    where = f"{field}.{dialect}"
    if dialect in _SINGLE_PAIR:
        if not isinstance(value, dict) or len(value) != 1:
            raise FilterError(where, "must hold exactly one attribute: value pair")
        (name, expected), = value.items()
        check_attribute_name(name, f"{where}.{name}")
        if not isinstance(expected, str) or (dialect != "exact" and not expected):
            raise FilterError(f"{where}.{name}", "must be a non-empty string")
        return _string_test(dialect, name, expected)
    if dialect in ("all", "any"):
        parts = [compile_filter(f, f"{where}[{i}]", on_error) for i, f in enumerate(_as_list(value, where))]
        combine = all if dialect == "all" else any
        return lambda event: combine(p(event) for p in parts)
    if dialect == "not":
        inner = compile_filter(value, where, on_error)
        return lambda event: not inner(event)
    if not isinstance(value, str):
        raise FilterError(where, "must be a CESQL expression string")
    try:
        return compile_expression(value, on_error)
    except UnsupportedCesql as exc:
        raise FilterError(where, str(exc)) from None


def _counted(namespace: str, trigger: str) -> OnError:
    def count(error: EvaluationError) -> None:
        metrics.FILTER_ERRORS.labels(namespace, trigger, error.kind).inc()

    return count


def _as_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise FilterError(where, "must be a non-empty list of filters")
    return value


def _string_test(dialect: str, name: str, expected: str) -> Matcher:
    if dialect == "exact":
        return lambda event: event.get(name) == expected
    if dialect == "prefix":
        return lambda event: event.get(name, "").startswith(expected) and name in event
    return lambda event: event.get(name, "").endswith(expected) and name in event


def compile_trigger_filter(spec: dict[str, Any], namespace: str = "", trigger: str = "") -> Matcher:
    """`spec.filters` wins over `spec.filter` when both are set, as in Knative."""
    if spec.get("filters"):
        return compile_filters(spec["filters"], on_error=_counted(namespace, trigger))
    attributes = (spec.get("filter") or {}).get("attributes")
    return compile_attributes(attributes) if attributes else match_all
