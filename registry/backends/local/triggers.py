"""Triggers created in the registry, applied live to the local eventing admin API.

The admin API takes the real Knative objects (brief contract 6), so the objects sent are the
ones `par manifests` prints for a cluster (`registry.manifests.trigger` / `.broker`).
"""

from __future__ import annotations

from typing import Any

import httpx

from registry import manifests
from registry.backends.base import BackendError, TriggerSpec

_API = "/apis/eventing.knative.dev/v1/namespaces/{namespace}/{kind}/{name}"


class EventingAdmin:
    """A small client of the eventing admin API."""

    def __init__(self, base_url: str) -> None:
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=10.0)

    async def apply_trigger(self, spec: TriggerSpec) -> None:
        broker_url = _API.format(namespace=spec.namespace, kind="brokers", name=spec.broker)
        if (await self._call("GET", broker_url, missing_ok=True)) is None:
            await self._call("PUT", broker_url, manifests.broker(spec.namespace, spec.broker))
        trigger_url = _API.format(namespace=spec.namespace, kind="triggers", name=spec.name)
        await self._call("PUT", trigger_url, manifests.trigger(spec))

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
