"""Where the policy comes from: the registry's snapshot feed, a static file, or a fixed object.

No decision waits on I/O: a background task refreshes the policy every
`PAR_GATEWAY_REFRESH_INTERVAL` seconds (ETag/304 against the registry, mtime for a file) and
decisions read the last good one. So a key revoked in the registry stops working within one
interval (plus the registry's own answer time). If the feed stops answering, the last snapshot is
used for at most `PAR_GATEWAY_MAX_STALENESS` seconds, after which every request is denied
(fail closed): an unreachable registry must not keep revoked keys alive forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Protocol

import httpx
import pydantic

from gateway.policy import Policy
from gateway.settings import GatewaySettings

log = logging.getLogger(__name__)


class PolicySource(Protocol):
    def current(self) -> Policy | None:
        """The policy to enforce now, or None when there is none fresh enough (deny all)."""
        ...

    @property
    def problem(self) -> str | None:
        """Why there is no policy to enforce, in words (`/readyz` answers it); None when fine."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class StaticPolicy:
    """A policy held in memory; `update()` replaces it (embedding, tests)."""

    def __init__(self, policy: Policy | None = None) -> None:
        self._policy = policy

    def current(self) -> Policy | None:
        return self._policy

    @property
    def problem(self) -> str | None:
        return None if self._policy is not None else "no policy given yet"

    def update(self, policy: Policy) -> None:
        self._policy = policy

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class _PollingSource:
    """Refreshes in a background task; serves the last good policy while it is fresh enough."""

    def __init__(self, interval: float, max_staleness: float) -> None:
        self.interval = interval
        self.max_staleness = max_staleness
        self._policy: Policy | None = None
        self._checked_at = 0.0  # monotonic time of the last successful refresh
        self._task: asyncio.Task[None] | None = None
        self._failure: str | None = None  # the last refresh's failure, in words

    def current(self) -> Policy | None:
        if self._policy is None or time.monotonic() - self._checked_at > self.max_staleness:
            return None
        return self._policy

    @property
    def problem(self) -> str | None:
        if self.current() is not None:
            return None
        if self._policy is not None:
            return f"the last policy is over {self.max_staleness:g}s old: {self._failure}"
        return self._failure or "no policy loaded yet"

    async def start(self) -> None:
        await self._refresh_logged(quiet=True)  # the server's start line says how it went
        self._task = asyncio.create_task(self._loop(), name=f"{type(self).__name__}-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self._refresh_logged()

    async def _refresh_logged(self, quiet: bool = False) -> None:
        """Refresh; a failure is logged when it starts or changes, not at every interval."""
        try:
            await self._refresh()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failure = self.explain(exc)
            if failure != self._failure and not quiet:
                log.warning(
                    "policy refresh failed; keeping the last snapshot" if self._policy else "no policy yet",
                    extra={"source": type(self).__name__, "error": failure, "revision": self.revision},
                )
            self._failure = failure
        else:
            if self._failure is not None:
                log.info("policy refresh works again", extra={"source": type(self).__name__})
            self._failure = None

    def explain(self, exc: Exception) -> str:
        return str(exc) or type(exc).__name__

    @property
    def revision(self) -> str | None:
        return self._policy.revision if self._policy else None

    def _accept(self, policy: Policy | None) -> None:
        """Record a successful check; `policy` is None when nothing changed."""
        if policy is not None and policy.revision != self.revision:
            log.info("policy loaded", extra={"revision": policy.revision, "keys": len(policy.keys)})
        if policy is not None:
            self._policy = policy
        self._checked_at = time.monotonic()

    async def _refresh(self) -> None:
        raise NotImplementedError


class RegistryFeed(_PollingSource):
    """Polls `GET {registry}/v1/gateway/snapshot` with the admin key, using the ETag."""

    def __init__(self, registry_url: str, token: str | None, interval: float, max_staleness: float) -> None:
        super().__init__(interval, max_staleness)
        self.url = registry_url.rstrip("/") + "/v1/gateway/snapshot"
        self.has_key = bool(token)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.AsyncClient(headers=headers, timeout=max(1.0, min(interval * 2, 10.0)))
        self._etag: str | None = None

    async def stop(self) -> None:
        await super().stop()
        await self._client.aclose()

    def explain(self, exc: Exception) -> str:
        if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code in (401, 403):
            fix = "a valid admin key in" if self.has_key else "set"
            return f"the registry answered {exc.response.status_code} to {self.url}: {fix} PAR_API_KEY"
        if isinstance(exc, httpx.TransportError):
            return f"the registry at {self.url} does not answer ({type(exc).__name__})"
        return super().explain(exc)

    async def _refresh(self) -> None:
        headers = {"If-None-Match": self._etag} if self._etag and self._policy else {}
        response = await self._client.get(self.url, headers=headers)
        if response.status_code == 304:
            self._accept(None)
            return
        response.raise_for_status()
        try:
            policy = Policy.from_json(response.content)
        except pydantic.ValidationError as exc:
            raise ValueError(f"malformed snapshot from {self.url}: {exc.error_count()} errors") from exc
        self._etag = response.headers.get("etag")
        self._accept(policy)


class FilePolicy(_PollingSource):
    """A JSON file of the snapshot shape, re-read when its modification time or size changes."""

    def __init__(self, path: str, interval: float, max_staleness: float) -> None:
        super().__init__(interval, max_staleness)
        self.path = path
        self._stamp: tuple[int, int] | None = None

    async def _refresh(self) -> None:
        stat = os.stat(self.path)
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            self._accept(None)
            return
        text = await asyncio.to_thread(Path(self.path).read_bytes)
        try:
            policy = Policy.from_json(text)
        except pydantic.ValidationError as exc:
            raise ValueError(f"malformed policy file {self.path}: {exc.error_count()} errors") from exc
        self._stamp = stamp
        self._accept(policy)


def policy_source_from(settings: GatewaySettings) -> PolicySource:
    """The registry feed when `PAR_REGISTRY_URL` is set, else `PAR_GATEWAY_POLICY_FILE`."""
    if settings.registry_url:
        return RegistryFeed(
            settings.registry_url, settings.registry_key, settings.refresh_interval, settings.max_staleness
        )
    if settings.policy_file:
        return FilePolicy(settings.policy_file, settings.refresh_interval, settings.max_staleness)
    raise ValueError(
        "no policy source: set PAR_REGISTRY_URL and PAR_API_KEY (the registry's admin key), "
        "or PAR_GATEWAY_POLICY_FILE"
    )
