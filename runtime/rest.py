"""Mount a package's `rest.entry` onto the runtime's FastAPI app, whichever object its code expects.

The original Pixell runtime called `mount(router)` with an `APIRouter`; `pixell dev` and PAR call
`mount(app)` with the FastAPI app. The package gets the app behind a view that also answers the
router-only attributes (`prefix`, `tags`, ...), so code written for either works. A `mount` that
returns a router or an app (or takes no argument and returns one) has its routes included.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI

from runtime.apkg import ApkgError


class AppOrRouter:
    """The FastAPI app, falling back to its `APIRouter` for attributes only a router has."""

    def __init__(self, app: FastAPI) -> None:
        object.__setattr__(self, "_app", app)

    def __getattr__(self, name: str) -> Any:
        app: FastAPI = object.__getattribute__(self, "_app")
        try:
            return getattr(app, name)
        except AttributeError:
            return getattr(app.router, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(object.__getattribute__(self, "_app"), name, value)


def mount_rest(app: FastAPI, mount: Callable[..., Any]) -> None:
    """Run the package's mount function; a failure is the package's clear refusal."""
    try:
        takes_argument = bool(inspect.signature(mount).parameters)
    except (TypeError, ValueError):
        takes_argument = True
    try:
        returned = mount(AppOrRouter(app)) if takes_argument else mount()
    except Exception as exc:
        raise ApkgError("rest_failed", f"rest.entry mount(app) raised {type(exc).__name__}: {exc}") from exc
    if isinstance(returned, APIRouter):
        app.include_router(returned)
    elif isinstance(returned, FastAPI) and returned is not app:
        app.include_router(returned.router)
