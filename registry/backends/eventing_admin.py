"""Triggers created in the registry, applied live to the local eventing admin API.

The admin API takes the real Knative objects (brief contract 6), so the objects sent are the
ones `par manifests` prints for a cluster (`registry.knative.manifests.trigger` / `.broker`).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx

from registry.backends.errors import BackendError
from registry.knative import manifests
from registry.spec import TriggerSpec

_API = "/apis/eventing.knative.dev/v1/namespaces/{namespace}/{kind}/{name}"


class EventingAdmin:
    """A small client of the eventing admin API."""

    def __init__(self, base_url: str, token: str | None = None, ready_within: float = 15.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=headers, timeout=10.0)
        self._ready_within = ready_within
        self._brokers: set[str] = set()  # Brokers this client saw or created (the eventing keeps them)

    async def apply_trigger(self, spec: TriggerSpec) -> None:
        """One request per Trigger once its Broker is known here (the answer says when it is Ready):
        `par up` applies every stored Trigger at start, which must not take seconds."""
        broker_url = _API.format(namespace=spec.namespace, kind="brokers", name=spec.broker)
        if broker_url not in self._brokers:
            if (await self._call("GET", broker_url, missing_ok=True)) is None:
                await self._call("PUT", broker_url, manifests.broker(spec.namespace, spec.broker))
            self._brokers.add(broker_url)
        trigger_url = _API.format(namespace=spec.namespace, kind="triggers", name=spec.name)
        applied = await self._call("PUT", trigger_url, manifests.trigger(spec))
        if applied is None or not _ready(applied):
            await self._wait_ready(trigger_url)

    async def _wait_ready(self, url: str) -> None:
        """Return once the dispatcher consumes for the trigger (its consumer group joined), so
        that an event sent right after `par trigger create` is delivered: a new Knative Kafka
        trigger starts at the latest offset, events before that are not for it. Bounded; a
        trigger still joining after that is left to become ready on its own."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._ready_within):
                while True:
                    response = await self._call("GET", url, missing_ok=True)
                    if response is not None and _ready(response):
                        return
                    await asyncio.sleep(0.1)

    async def delete_trigger(self, namespace: str, name: str) -> None:
        url = _API.format(namespace=namespace, kind="triggers", name=name)
        await self._call("DELETE", url, missing_ok=True)

    async def _call(
        self, method: str, url: str, body: dict[str, Any] | None = None, *, missing_ok: bool = False
    ) -> httpx.Response | None:
        try:
            response = await self._client.request(method, url, json=body)
        except httpx.HTTPError as exc:
            raise BackendError(f"eventing admin API unreachable: {exc}") from exc
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code >= 400:
            raise BackendError(
                f"eventing admin API {method} {url}: {response.status_code} {response.text[:300]}"
            )
        return response

    async def aclose(self) -> None:
        await self._client.aclose()


def _ready(response: httpx.Response) -> bool:
    conditions = response.json().get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
