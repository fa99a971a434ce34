"""A deployment's compute resources: the Kubernetes quantities `par deploy --request/--limit`
asks for, resolved over the platform's defaults and checked against its maximums.

Resolution follows Kubernetes' own defaulting, so the manifest says what a pod would get: a value
the deployment gives wins; a request left out is the platform default but at most the limit (a
pod with only a limit gets request = limit), a limit left out is the default but at least the
request. A request above its limit is refused with Kubernetes' message, and a value above the
platform's maximum (`PAR_MAX_CPU_LIMIT`, `PAR_MAX_MEMORY_LIMIT`, also the `max` of the
LimitRange each agent namespace gets) is refused naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping

from registry.settings import RegistrySettings
from registry.spec import Resources
from runtime import quantity

NAMES = ("cpu", "memory")
KINDS = ("requests", "limits")


class Refused(ValueError):
    """The deployment asks for what the platform refuses; `field` names it in the API's body."""

    def __init__(self, field: str, message: str, *, code: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message, self.code = field, message, code


def defaults_from(settings: RegistrySettings) -> Resources:
    return Resources(
        requests={"cpu": settings.runtime_cpu_request, "memory": settings.runtime_memory_request},
        limits={"cpu": settings.runtime_cpu_limit, "memory": settings.runtime_memory_limit},
    )


def maximum_from(settings: RegistrySettings) -> dict[str, str]:
    return {"cpu": settings.max_cpu_limit, "memory": settings.max_memory_limit}


def merged(
    stored: Mapping[str, Mapping[str, str]], changes: Mapping[str, Mapping[str, str | None]]
) -> dict[str, dict[str, str]]:
    """`stored` with `changes` applied per value, as kn's `--limit memory=1Gi` keeps the cpu
    limit: a value replaces, None removes (back to the default)."""
    result: dict[str, dict[str, str]] = {kind: dict(stored.get(kind) or {}) for kind in KINDS}
    for kind in KINDS:
        for name, value in (changes.get(kind) or {}).items():
            if value is None:
                result[kind].pop(name, None)
            else:
                result[kind][name] = value
    return {kind: values for kind, values in result.items() if values}


def resolve(asked: Resources, defaults: Resources) -> Resources:
    """What the container gets: `asked` over `defaults`, defaulted as Kubernetes does."""
    requests, limits = dict(defaults.requests), dict(defaults.limits)
    for name in {*asked.requests, *asked.limits, *requests, *limits}:
        request = asked.requests.get(name, requests.get(name))
        limit = asked.limits.get(name, limits.get(name))
        if request is not None and limit is not None and _more(request, limit):
            if name not in asked.requests:
                request = limit
            elif name not in asked.limits:
                limit = request
        for values, value in ((requests, request), (limits, limit)):
            if value is not None:
                values[name] = value
    return Resources(requests=requests, limits=limits)


def check(asked: Resources, defaults: Resources, maximum: Mapping[str, str]) -> Resources:
    """The resolved resources, or `Refused` for the first value over the platform's maximum or
    a request over its limit."""
    for kind in KINDS:
        for name, value in sorted(getattr(asked, kind).items()):
            most = maximum.get(name)
            if most is not None and _more(value, most):
                setting = f"PAR_MAX_{name.upper()}_LIMIT"
                message = f"{value} is over the platform's maximum of {most} ({setting})"
                raise Refused(f"resources.{kind}.{name}", message, code="resources_over_maximum")
    resolved = resolve(asked, defaults)
    for name, request in sorted(resolved.requests.items()):
        limit = resolved.limits.get(name)
        if limit is not None and _more(request, limit):
            message = f'Invalid value: "{request}": must be less than or equal to {name} limit of {limit}'
            raise Refused(f"resources.requests.{name}", message, code="request_over_limit")
    return resolved


def _more(a: str, b: str) -> bool:
    return quantity.parse(a) > quantity.parse(b)
