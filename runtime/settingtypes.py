"""What every component's settings share: duration and size types that forgive the notations
people already write, and the one line a bad value becomes.

Durations (`Seconds`, `WholeSeconds`, `Millis`): Go's and Knative's `90s`, `1m30s`, `2h`,
`250ms`; ISO-8601 `PT1M`, `P1DT2H`; a plain number in the field's own unit (seconds, or
milliseconds for the `_MS` names). Sizes (`Bytes`): Kubernetes quantities `256Mi`, `1G`
(`runtime.quantity`) or a plain number of bytes. `Quantity` keeps the text (`500m`, `1Gi`) but
refuses one Kubernetes would not take.

`describe(error, settings_class)` renders a pydantic ValidationError of a settings class as one
line naming the variable, what is accepted and the value given (a key's or token's value is not
repeated); `cli.main` prints it and exits 2.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsError

from runtime import quantity

DURATION_HELP = "expected a duration such as 90s, 1m30s, 2h, 250ms, ISO-8601 PT1M, or a number of {unit}"
SIZE_HELP = "expected a size such as 256Mi, 1G, 512Ki or a number of bytes"
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GO = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_ISO = re.compile(
    r"P(?:(?P<W>\d+(?:\.\d+)?)W)?(?:(?P<D>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<H>\d+(?:\.\d+)?)H)?(?:(?P<M>\d+(?:\.\d+)?)M)?(?:(?P<S>\d+(?:\.\d+)?)S)?)?"
)
_ISO_SECONDS = {"W": 604800.0, "D": 86400.0, "H": 3600.0, "M": 60.0, "S": 1.0}


def parse_duration(value: object, unit: float = 1.0, unit_name: str = "seconds") -> float:
    """`value` in units of `unit` seconds (1.0: seconds, 0.001: milliseconds)."""
    if isinstance(value, bool):
        raise ValueError(DURATION_HELP.format(unit=unit_name))
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    seconds = _go_seconds(text)
    if seconds is None:
        seconds = _iso_seconds(text)
    if seconds is None:
        raise ValueError(DURATION_HELP.format(unit=unit_name))
    return seconds / unit


def _go_seconds(text: str) -> float | None:
    sign, body = (-1.0, text[1:]) if text.startswith("-") else (1.0, text.removeprefix("+"))
    if not body or _GO.sub("", body):
        return None
    return sign * sum(float(n) * _GO_UNITS[u] for n, u in _GO.findall(body))


def _iso_seconds(text: str) -> float | None:
    match = _ISO.fullmatch(text.upper())
    if match is None or text.upper() in ("P", "PT") or text.upper().endswith("T"):
        return None
    return sum(float(v) * _ISO_SECONDS[k] for k, v in match.groupdict().items() if v)


def parse_size(value: object) -> int:
    """Bytes from a quantity (`256Mi`) or a plain number."""
    if isinstance(value, bool):
        raise ValueError(SIZE_HELP)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    try:
        amount = quantity.parse(str(value))
    except ValueError:
        raise ValueError(SIZE_HELP) from None
    if amount != int(amount):
        raise ValueError(SIZE_HELP + " (a whole number of bytes)")
    return int(amount)


def _whole_seconds(value: object) -> int:
    seconds = parse_duration(value)
    if not seconds.is_integer():
        raise ValueError("expected a whole number of seconds (e.g. 600, 10m, PT10M)")
    return int(seconds)


def _millis(value: object) -> int:
    """A plain number is milliseconds; `10s` is 10000."""
    if isinstance(value, str) and not _is_number(value):
        return round(parse_duration(value, unit_name="milliseconds") * 1000)
    return round(parse_duration(value, unit_name="milliseconds"))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _quantity(value: str) -> str:
    try:
        quantity.parse(value)
    except ValueError:
        raise ValueError("expected a Kubernetes quantity such as 500m, 1, 256Mi or 1Gi") from None
    return value.strip()


Seconds = Annotated[float, BeforeValidator(parse_duration)]
WholeSeconds = Annotated[int, BeforeValidator(_whole_seconds)]
Millis = Annotated[int, BeforeValidator(_millis)]
Bytes = Annotated[int, BeforeValidator(parse_size)]
Quantity = Annotated[str, AfterValidator(_quantity)]


def env_names(settings: type[BaseSettings], name: str, field: FieldInfo) -> list[str]:
    """The environment variables that set `field` of `settings`, the preferred one first."""
    alias = field.validation_alias or field.alias
    if isinstance(alias, str):
        return [alias]
    if alias is not None and hasattr(alias, "choices"):
        return [c for c in alias.choices if isinstance(c, str)]
    prefix = str(settings.model_config.get("env_prefix") or "")
    return [(prefix + name).upper()]


def describe(error: ValidationError | SettingsError, settings: type[BaseSettings]) -> str:
    """One line: each bad variable, what it accepts, and the value given."""
    fields = settings.model_fields
    if isinstance(error, SettingsError):  # a structured value (JSON) that does not parse
        match = re.search(r'field "([^"]+)"', str(error))
        name = match.group(1) if match and match.group(1) in fields else None
        if name is None:
            return f"invalid setting: {error}"
        names = env_names(settings, name, fields[name])
        variable = next((n for n in names if _set(n, settings)), names[0])
        given = next((v for k, v in os.environ.items() if k.upper() == variable.upper()), "")
        expected = f"expected JSON of {_type_name(fields[name])}"
        return f"invalid setting {variable}: {expected} (got {_shown(given)})"
    problems = []
    for item in error.errors():
        where = str(item["loc"][0]) if item["loc"] else ""
        field_name = next(
            (n for n, f in fields.items() if where == n or where in env_names(settings, n, f)), None
        )
        names = env_names(settings, field_name, fields[field_name]) if field_name else [where]
        variable = next((n for n in names if _set(n, settings)), names[0])
        message = str(item["msg"]).removeprefix("Value error, ")
        secret = any(word in variable.upper() for word in ("KEY", "TOKEN", "PASSWORD", "SECRET"))
        raw = next((v for k, v in os.environ.items() if k.upper() == variable.upper()), None)
        given = raw if raw is not None and len(item["loc"]) <= 1 else item.get("input")  # as written
        shown = "a value not shown" if secret else _shown(given)
        problems.append(f"{variable}: {message} (got {shown})" if variable else message)
    return "invalid setting " + "; ".join(problems)


def _set(variable: str, settings: type[BaseSettings]) -> bool:
    if settings.model_config.get("case_sensitive"):
        return variable in os.environ
    return variable.upper() in {name.upper() for name in os.environ}


def _type_name(field: FieldInfo) -> str:
    return re.sub(r"typing\.|<class '([^']+)'>", r"\1", str(field.annotation))


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return repr(text[:80])
