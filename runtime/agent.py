"""Load a prepared package into this process: environment, import paths, and its surfaces.

Environment precedence (lowest first): the package's `.env`, agent.yaml `environment`,
deploy.json `environment`, then the process environment (the deployment's), which always wins.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.apkg import ApkgError
from runtime.prepare import Prepared

log = logging.getLogger("runtime.agent")

A2A_FACTORY_TIMEOUT = 10.0


@dataclass
class Agent:
    """One loaded agent: the callables and folders the ASGI app serves."""

    prepared: Prepared
    handler: Callable[..., Any] | None = None
    rest_mount: Callable[..., Any] | None = None
    a2a_handlers: dict[str, Callable[..., Any]] = field(default_factory=dict)
    a2a_streams: dict[str, Callable[..., Any]] = field(default_factory=dict)  # async generators
    http_app: Any = None
    ui_dir: Path | None = None

    @property
    def name(self) -> str:
        return self.prepared.manifest.name

    @property
    def version(self) -> str:
        return self.prepared.manifest.version

    @property
    def surfaces(self) -> dict[str, bool]:
        return {
            "invoke": self.handler is not None,
            "rest": self.rest_mount is not None,
            "a2a": bool(self.a2a_handlers or self.a2a_streams),
            "http_server": self.http_app is not None,
            "ui": self.ui_dir is not None,
        }


def layered_environment(prepared: Prepared, process_env: Mapping[str, str]) -> dict[str, str]:
    """The variables the package adds: `.env` < agent.yaml < deploy.json, never overriding the process."""
    layers: dict[str, str] = {}
    dotenv_file = prepared.app_dir / ".env"
    if dotenv_file.is_file():
        from dotenv import dotenv_values

        layers.update({k: v for k, v in dotenv_values(dotenv_file).items() if v is not None})
    layers.update(prepared.manifest.environment)
    deploy_env = prepared.deploy.get("environment") or {}
    layers.update({str(k): str(v) for k, v in deploy_env.items()})
    return {k: v for k, v in layers.items() if k not in process_env}


def load(prepared: Prepared) -> Agent:
    """Apply the environment, put the package on sys.path and resolve every declared surface."""
    os.environ.update(layered_environment(prepared, os.environ))
    os.environ.setdefault("PAR_AGENT_NAME", prepared.manifest.name)
    app_dir = str(prepared.app_dir.resolve())
    if app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    if prepared.deps_dir is not None and str(prepared.deps_dir) not in sys.path:
        sys.path.append(str(prepared.deps_dir))  # after the runtime's own packages: ours win
    for conflict in prepared.conflicts:
        log.warning("dependency conflict: %s", conflict)
    for warning in prepared.warnings:
        log.warning("package: %s", warning)

    entries = prepared.manifest.entry_points()
    agent = Agent(prepared=prepared)
    if "entrypoint" in entries:
        agent.handler = resolve(entries["entrypoint"], "entrypoint")
    if "rest" in entries:
        agent.rest_mount = resolve(entries["rest"], "rest.entry")
    if "a2a" in entries:
        agent.a2a_handlers, agent.a2a_streams = _a2a_handlers(resolve(entries["a2a"], "a2a"))
    if "http_server" in entries:
        agent.http_app = asgi_app(resolve(entries["http_server"], "http_server", want_callable=False))
    agent.ui_dir = _ui_dir(prepared)
    return agent


def resolve(spec: str, surface: str, *, want_callable: bool = True) -> Any:
    """Import `module:attr.path`; any failure is an ApkgError naming the surface."""
    module_name, _, attr_path = spec.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr_path.split("."):
            target = getattr(target, part)
    except AttributeError as exc:
        raise ApkgError("entrypoint_unresolved", f"{surface} {spec!r}: {exc}") from exc
    except Exception as exc:
        raise ApkgError(
            "entrypoint_unresolved",
            f"{surface} {spec!r}: importing {module_name} failed: {type(exc).__name__}: {exc}",
        ) from exc
    if want_callable and not callable(target):
        raise ApkgError("entrypoint_unresolved", f"{surface} {spec!r} is not callable")
    return target


def asgi_app(target: Any) -> Any:
    """`http_server` as pixell-sdk 0.5 allows it: an ASGI app, an object with `.app` (the SDK's
    `AgentServer`), or a zero-argument factory of either."""
    if _zero_argument_function(target):
        try:
            target = target()
        except Exception as exc:
            raise ApkgError(
                "entrypoint_unresolved", f"http_server factory raised {type(exc).__name__}: {exc}"
            ) from exc
    if not _is_asgi(target) and _is_asgi(getattr(target, "app", None)):
        target = target.app
    if not _is_asgi(target):
        raise ApkgError(
            "entrypoint_unresolved",
            f"http_server is a {type(target).__name__}: not an ASGI app, an object with .app, or a factory",
        )
    return target


def _zero_argument_function(target: Any) -> bool:
    if not (inspect.isfunction(target) or inspect.ismethod(target)):
        return False
    return not any(p.default is p.empty for p in _positional(target))


def _is_asgi(target: Any) -> bool:
    """Callable with (scope, receive, send): a function, or an object whose __call__ takes three."""
    if target is None or not callable(target) or inspect.isclass(target):
        return False
    fn = target if inspect.isfunction(target) or inspect.ismethod(target) else target.__call__
    try:
        return len(_positional(fn)) == 3
    except (TypeError, ValueError):
        return True  # a builtin or C callable: trust it


def _positional(fn: Callable[..., Any]) -> list[inspect.Parameter]:
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p for p in inspect.signature(fn).parameters.values() if p.kind in kinds]


HandlerMaps = tuple[dict[str, Callable[..., Any]], dict[str, Callable[..., Any]]]


def _a2a_handlers(factory: Callable[..., Any]) -> HandlerMaps:
    """Call the zero-argument a2a factory (bounded: kit-era factories may start a blocking server).

    It may return `{"custom_handlers": ..., "streaming_handlers": ...}`, an object with a
    `custom_handlers` attribute (the original runtime's example), or None (`pixell init`'s stub).
    """
    result: dict[str, Any] = {}

    def call() -> None:
        try:
            result["value"] = factory()
        except Exception as exc:
            result["error"] = exc

    thread = threading.Thread(target=call, name="a2a-factory", daemon=True)
    thread.start()
    thread.join(A2A_FACTORY_TIMEOUT)
    if thread.is_alive():
        log.warning("a2a factory did not return within %ss; A2A disabled", A2A_FACTORY_TIMEOUT)
        return {}, {}
    if "error" in result:
        raise ApkgError(
            "a2a_failed", f"a2a factory raised {type(result['error']).__name__}: {result['error']}"
        )
    value = result.get("value")
    if inspect.iscoroutine(value):
        value.close()
        raise ApkgError("a2a_failed", "a2a factory must be a plain function, not async")
    handlers, streams = _handler_map(value, "custom_handlers"), _handler_map(value, "streaming_handlers")
    if not handlers and not streams:
        log.info("a2a factory returned no custom_handlers; A2A disabled")
    return handlers, streams


def _handler_map(value: Any, key: str) -> dict[str, Callable[..., Any]]:
    found = value.get(key) if isinstance(value, dict) else getattr(value, key, None)
    if not found:
        return {}
    if not isinstance(found, dict):
        raise ApkgError("a2a_failed", f"a2a {key} must be a mapping of action to function")
    bad = [name for name, fn in found.items() if not callable(fn)]
    if bad:
        raise ApkgError("a2a_failed", f"a2a {key} not callable: {', '.join(map(str, bad))}")
    return {str(name): fn for name, fn in found.items()}


def _ui_dir(prepared: Prepared) -> Path | None:
    """ui.path at the package root (sdk 0.5), or dist/ui (where kit 0.4 puts the UI)."""
    if not prepared.manifest.ui:
        return None
    root = prepared.app_dir.resolve()
    for candidate in (root / prepared.manifest.ui.path, root / "dist" / "ui"):
        resolved = candidate.resolve()
        if resolved.is_dir() and resolved.is_relative_to(root):
            return resolved
    log.warning("ui.path %r not found in the package; UI disabled", prepared.manifest.ui.path)
    return None
