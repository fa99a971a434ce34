"""A small synchronous client of the registry API for the `par` commands.

Errors come back as `RegistryError` carrying the problem+json title and detail, so the CLI can
print one clear line instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from registry.settings import RegistrySettings

DEFAULT_URL = "http://127.0.0.1:8097"


class RegistryError(Exception):
    def __init__(self, status: int, title: str, detail: str | None = None) -> None:
        super().__init__(f"{title}: {detail}" if detail else title)
        self.status, self.title, self.detail = status, title, detail


class RegistryClient:
    def __init__(self, url: str, api_key: str | None, timeout: float = 60.0) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    @classmethod
    def from_settings(cls, settings: RegistrySettings | None = None) -> RegistryClient:
        """PAR_REGISTRY_URL / PAR_API_KEY; else the `par up` running on PAR_DATA_DIR (its
        platform.json and admin.key); else a `par registry serve` on 127.0.0.1:8097."""
        from registry.discovery import locate

        settings = settings or RegistrySettings()
        found = locate(settings.data_dir)
        return cls(
            settings.registry_url or found.registry_url or DEFAULT_URL,
            settings.api_key or found.api_key,
        )

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise RegistryError(0, f"cannot reach the registry at {self.url}", str(exc)) from exc
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"title": response.reason_phrase, "detail": response.text[:200]}
            raise RegistryError(response.status_code, body.get("title", "Error"), body.get("detail"))
        return response

    def lines(self, path: str, params: dict[str, Any], follow: bool = False) -> Iterator[str]:
        """The lines of a streamed answer (NDJSON), as they arrive; no read timeout when following."""
        timeout = httpx.Timeout(self.http.timeout.connect, read=None) if follow else self.http.timeout
        try:
            with self.http.stream("GET", path, params=params, timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    try:
                        body = response.json()
                    except ValueError:
                        body = {"title": response.reason_phrase, "detail": response.text[:200]}
                    raise RegistryError(response.status_code, body.get("title", "Error"), body.get("detail"))
                yield from response.iter_lines()
        except httpx.HTTPError as exc:
            raise RegistryError(0, f"lost the registry at {self.url}", str(exc)) from exc

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return None if response.status_code == 204 else response.json()

    def pages(self, path: str, params: dict[str, Any] | None = None, limit: int = 200) -> list[Any]:
        """Every item of a paginated list, following next_cursor."""
        items: list[dict[str, Any]] = []
        query = {**(params or {}), "limit": limit}
        while True:
            page = self.json("GET", path, params=query)
            items += page["items"]
            if not page.get("next_cursor"):
                return items
            query["cursor"] = page["next_cursor"]

    def upload(self, namespace: str, package: Path, name: str | None = None) -> httpx.Response:
        with package.open("rb") as fh:
            return self.request(
                "POST",
                f"/v1/namespaces/{namespace}/packages",
                files={"file": (package.name, fh, "application/zip")},
                data={"name": name} if name else {},
            )
