"""Where the proxy sends a request: the seam between the gateway and whatever runs agents.

The gateway's proxy mode asks a `Resolver` for an upstream base URL and holds it for the whole
exchange, response body included, so that the resolver can count requests in flight (Knative's
activator and queue-proxy do the same): a resolver may hold the caller while it starts an
instance from zero, queue it to honour `containerConcurrency`, and release capacity when the
context exits. The one-machine platform plugs its local backend in here; `StaticResolver` is a
fixed map for a gateway in front of agents that are already running.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol


class UnknownAgent(LookupError):
    """No such agent in that namespace: the proxy answers 404."""


class AgentUnavailable(RuntimeError):
    """The agent exists but cannot serve (failed to start, crashed): the proxy answers 502
    with this message as the reason."""


class Resolver(Protocol):
    def acquire(
        self, namespace: str, agent: str, tag: str | None = None
    ) -> AbstractAsyncContextManager[str]:
        """Yield the upstream base URL (e.g. `http://127.0.0.1:41234`) for one request; with a
        traffic `tag`, of the version that tag names (Knative's tag routes)."""
        ...


class StaticResolver:
    """A fixed `{(namespace, agent): base_url}` map."""

    def __init__(self, upstreams: Mapping[tuple[str, str], str]) -> None:
        self._upstreams = dict(upstreams)

    @asynccontextmanager
    async def acquire(self, namespace: str, agent: str, tag: str | None = None) -> AsyncIterator[str]:
        if tag is not None:
            raise UnknownAgent(f"no tag routes here: {tag}-{agent} in namespace {namespace!r}")
        try:
            url = self._upstreams[(namespace, agent)]
        except KeyError:
            raise UnknownAgent(f"agent {agent!r} not found in namespace {namespace!r}") from None
        yield url
