"""Which agent a request is for, from its Host header, the way Knative names services.

Accepted forms (after dropping the port, lowercasing and one trailing dot):
`{agent}.{namespace}.{domain}`, `{agent}.{namespace}.svc.cluster.local`, `{agent}.{namespace}.svc`
and `{agent}.{namespace}`. Anything else, including non-ASCII (IDN) text, empty labels and extra
labels, is no target at all (404): a Host trick must never land on a different agent.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_AGENT_RE = re.compile(r"[a-z][a-z0-9-]{0,62}")
_NAMESPACE_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_CLUSTER_SUFFIXES = (".svc.cluster.local", ".svc")
_CACHE_SIZE = 4096
# One machine's default domain: sslip.io names resolve to the address they contain, so
# `{agent}.{namespace}.127.0.0.1.sslip.io` reaches a gateway on loopback with no DNS set-up.
DEFAULT_DOMAIN = "127.0.0.1.sslip.io"


def agent_host(agent: str, namespace: str, domain: str = DEFAULT_DOMAIN) -> str:
    """The host an agent answers at, as Knative names a Service: `{agent}.{namespace}.{domain}`."""
    return f"{agent}.{namespace}.{domain}"


class Target(NamedTuple):
    namespace: str
    agent: str
    tag: str | None = None  # a Knative traffic tag: `{tag}-{agent}.{namespace}.{domain}`

    def __str__(self) -> str:
        return f"{self.namespace}/{self.agent}"


class HostResolver:
    """Parses Host values into targets; remembers recent answers because a gateway sees the same
    few hosts over and over (the cache is bounded and holds misses too)."""

    def __init__(self, domain: str) -> None:
        self._suffixes = (f".{domain}", *_CLUSTER_SUFFIXES) if domain else _CLUSTER_SUFFIXES
        self._cache: dict[str, Target | None] = {}

    def resolve(self, host: str) -> Target | None:
        try:
            return self._cache[host]
        except KeyError:
            pass
        target = self._parse(host)
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
        self._cache[host] = target
        return target

    def _parse(self, host: str) -> Target | None:
        if not host.isascii() or host.startswith("["):
            return None
        name, _, port = host.partition(":")
        if port and not port.isdigit():
            return None
        name = name.lower()
        if name.endswith("."):
            name = name[:-1]
        for suffix in self._suffixes:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        parts = name.split(".")
        if len(parts) != 2:
            return None
        agent, namespace = parts
        if not (_AGENT_RE.fullmatch(agent) and _NAMESPACE_RE.fullmatch(namespace)):
            return None
        return Target(namespace, agent)
