"""Every component's settings class in one list, the one line a bad value becomes at any `par`
command, and the settings reference (docs/settings.md) generated from the classes."""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path
from typing import Literal, NoReturn, get_args, get_origin

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings, SettingsError

from runtime.settingtypes import describe, env_names

EXIT_BAD_SETTING = 2


def settings_classes() -> list[type[BaseSettings]]:
    """Logging, runtime, gateway, eventing, serving, registry: the order of docs/settings.md."""
    from eventing.settings import EventingSettings
    from gateway.settings import GatewaySettings
    from registry.settings import RegistrySettings
    from runtime.config import RuntimeSettings
    from runtime.jsonlog import LogSettings
    from serving import ServingSettings

    return [
        LogSettings, RuntimeSettings, GatewaySettings, EventingSettings, ServingSettings, RegistrySettings
    ]


def check_all() -> None:
    """Read every component's settings now (`par up` runs them all): a bad value anywhere is
    reported before any part starts (ValidationError, for `cli.main` to print)."""
    for cls in settings_classes():
        cls()


def settings_class(error: ValidationError | SettingsError) -> type[BaseSettings] | None:
    """The settings class an error is about: pydantic names the model in `title`; a value that
    does not parse names only its field (one field of one class, by construction)."""
    if isinstance(error, ValidationError):
        return next((c for c in settings_classes() if c.__name__ == error.title), None)
    return next((c for c in settings_classes() for n in c.model_fields if f'field "{n}"' in str(error)), None)


def exit_bad_setting(error: ValidationError | SettingsError, command: str = "par") -> NoReturn:
    """Print `command: invalid setting VARIABLE: what is accepted (got 'value')` on stderr, exit 2."""
    settings = settings_class(error)
    if settings is None:
        raise error
    print(f"{command}: {describe(error, settings)}", file=sys.stderr)
    sys.exit(EXIT_BAD_SETTING)


def reference() -> str:
    """docs/settings.md: every variable of every component, its type, default and meaning (the
    field's description, else the comment above or beside it in the source).
    `scripts/settings_reference.py` writes it; a test fails when the file is stale."""
    lines = [
        "# Settings reference",
        "",
        "Generated from the settings classes by `scripts/settings_reference.py`; do not edit by hand",
        "(`tests/unit/test_settings.py` fails when this file is stale).",
        "",
        "Durations take `90s`, `1m30s`, `2h`, `250ms`, ISO-8601 `PT1M` or a plain number in the field's",
        "unit; sizes take `256Mi`, `1G` or bytes; quantities are Kubernetes' (`500m`, `1Gi`). A bad value",
        "stops any `par` command with one line naming the variable, what it accepts and the value given",
        "(exit 2).",
        "Where a row names several variables, the first one set wins.",
    ]
    for cls in settings_classes():
        comments = _comments(cls)
        lines += ["", f"## {cls.__module__}.{cls.__name__}", ""]
        if cls.__doc__:
            lines += [" ".join(cls.__doc__.split()), ""]
        lines += ["| variable | type | default | meaning |", "|---|---|---|---|"]
        for name, field in cls.model_fields.items():
            variables = " / ".join(f"`{v}`" for v in env_names(cls, name, field))
            meaning = field.description or comments.get(name, "")
            kind = _type(field) + _range(field)
            lines.append(f"| {variables} | {kind} | {_default(field)} | {_cell(meaning)} |")
    return "\n".join(lines) + "\n"


def _type(field: FieldInfo) -> str:
    kinds = {"parse_duration": "duration (s)", "_whole_seconds": "duration (whole s)",
             "_millis": "duration (ms)", "parse_size": "size", "_quantity": "quantity"}
    for meta in field.metadata:
        kind = kinds.get(getattr(getattr(meta, "func", None), "__name__", ""))
        if kind:
            return kind
    annotation = field.annotation
    if get_origin(annotation) is Literal:
        return " \\| ".join(f"`{a}`" for a in get_args(annotation))
    text = re.sub(r"<class '([^']+)'>", r"\1", str(annotation))
    text = re.sub(r"typing\.|pathlib\.|pydantic\.types\.", "", text)
    text = re.sub(r"Annotated\[(\w+), FieldInfo\(.*?\]\)\]", r"\1", text)  # constrained items
    return _cell(text.replace("NoneType", "None"))


def _range(field: FieldInfo) -> str:
    """` (>= 1)`, ` (> 0)`, ` (>= 1, <= 65535)`: the Field constraints of a value (or of its items)."""
    metadata = list(field.metadata)
    for arg in get_args(field.annotation):
        for meta in getattr(arg, "__metadata__", ()):
            metadata += meta.metadata if isinstance(meta, FieldInfo) else [meta]
    bound = {kind: getattr(m, kind) for m in metadata for kind in ("ge", "gt", "le") if hasattr(m, kind)}
    low = f">= {bound['ge']}" if "ge" in bound else f"> {bound['gt']}" if "gt" in bound else None
    high = f"<= {bound['le']}" if "le" in bound else None
    shown = ", ".join(part for part in (low, high) if part)
    return f" ({shown})" if shown else ""


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value: object = field.default_factory()  # type: ignore[call-arg]
    else:
        value = field.default
    if value is None or value == PydanticUndefined:
        return ""
    # Written for any machine: the checkout's own folder and the home folder are not spelled out.
    checkout = str(Path(__file__).resolve().parents[1]) + "/"
    text = str(value).replace(checkout, "").replace(str(Path.home()), "~")
    return f"`{_cell(text)}`" if text else '`""`'


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _comments(cls: type[BaseSettings]) -> dict[str, str]:
    """Each field's comment in the class source: the `#` lines just above it, else the one after it."""
    source = inspect.getsource(cls).splitlines()
    found: dict[str, str] = {}
    for number, line in enumerate(source):
        match = re.match(r"\s+([a-z_][a-z0-9_]*)\s*:", line)
        if not match or match.group(1) not in cls.model_fields:
            continue
        above: list[str] = []
        for earlier in reversed(source[:number]):
            if not earlier.strip().startswith("#"):
                break
            above.insert(0, earlier.strip().lstrip("#").strip())
        beside = line.split("  # ", 1)[1] if "  # " in line else ""
        found[match.group(1)] = " ".join(above) or beside
    return found
