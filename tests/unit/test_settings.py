"""Every setting of every component, enumerated (not a hand-picked few): durations take Knative's
and Go's notation, ISO-8601 and plain numbers; sizes take quantities and bytes; a bad value is
one line naming the variable, what is accepted and the value; `par` exits 2 without a traceback.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsError

from cli.settings import settings_classes
from runtime.settingtypes import describe, env_names, parse_duration, parse_size

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ("runtime", "gateway", "eventing", "serving", "registry", "cli")
FIELDS = [
    pytest.param(cls, name, field, id=f"{cls.__name__}.{name}")
    for cls in settings_classes()
    for name, field in cls.model_fields.items()
]
# Names that say "this is a length of time" or "this is an amount of bytes".
DURATION_NAME = re.compile(
    r"timeout|interval|_seconds$|_after$|grace|backoff|staleness|leeway|_ms$|_sec$|wait"
)
SIZE_NAME = re.compile(r"_bytes$")


def _kind(field: FieldInfo) -> str | None:
    """'duration' / 'size' from the field's validators (runtime.settingtypes), else None."""
    for meta in field.metadata:
        func = getattr(meta, "func", None)
        name = getattr(func, "__name__", "")
        if name in ("parse_duration", "_whole_seconds", "_millis"):
            return "duration"
        if name == "parse_size":
            return "size"
    return None


def _build(
    cls: type[BaseSettings], variable: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> BaseSettings:
    for other in [n for n in os.environ if n.upper().startswith(("PAR_", "KAFKA_"))]:
        monkeypatch.delenv(other)
    monkeypatch.setenv(variable, value)
    return cls()


def test_every_settings_class_is_listed() -> None:
    """A new BaseSettings subclass anywhere must join cli.settings (and so docs/settings.md)."""
    declared = set()
    for component in COMPONENTS:
        for path in (ROOT / component).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef) and any(
                    getattr(b, "id", None) == "BaseSettings" for b in node.bases
                ):
                    declared.add(node.name)
    assert declared == {c.__name__ for c in settings_classes()}


@pytest.mark.parametrize(("cls", "name", "field"), FIELDS)
def test_duration_and_size_fields_are_typed(cls: type[BaseSettings], name: str, field: FieldInfo) -> None:
    """A field named like a duration or a size uses the forgiving type."""
    if DURATION_NAME.search(name):
        assert _kind(field) == "duration", f"{cls.__name__}.{name} should be Seconds/WholeSeconds/Millis"
    if SIZE_NAME.search(name):
        assert _kind(field) == "size", f"{cls.__name__}.{name} should be Bytes"


@pytest.mark.parametrize(("cls", "name", "field"), FIELDS)
def test_every_field(
    cls: type[BaseSettings], name: str, field: FieldInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    variable = env_names(cls, name, field)[0]
    kind = _kind(field)
    if kind == "duration":
        millis = name.endswith("_ms")
        whole = "_whole_seconds" in str(field.metadata)
        for text, seconds in [("90s", 90), ("1m30s", 90), ("2h", 7200), ("PT1M", 60), ("1500ms", 1.5)]:
            if not (whole and seconds != int(seconds)):
                value = getattr(_build(cls, variable, text, monkeypatch), name)
                assert value == pytest.approx(seconds * 1000 if millis else seconds), (variable, text)
        plain = getattr(_build(cls, variable, "45", monkeypatch), name)
        assert plain == 45  # a plain number is the field's own unit
    if kind == "size":
        for text, size in [("256Mi", 256 << 20), ("1G", 10**9), ("4096", 4096)]:
            assert getattr(_build(cls, variable, text, monkeypatch), name) == size, (variable, text)
    refused = []
    for bad in ("soon", "{not json", "-3x"):
        try:
            _build(cls, variable, bad, monkeypatch)
        except (ValidationError, SettingsError) as exc:
            refused.append((bad, describe(exc, cls)))
    if not refused:  # free text: only text-like fields may take anything
        assert kind is None and re.search(r"\bstr\b|Path|SecretStr", str(field.annotation)), variable
        return
    for bad, line in refused:
        assert "\n" not in line and line.startswith(f"invalid setting {variable}: "), line
        secret = any(w in variable for w in ("KEY", "TOKEN", "PASSWORD", "SECRET"))
        assert (repr(bad) in line) != secret, line  # the value, unless it is a secret
    if kind is not None:
        assert "such as" in refused[0][1]  # says what is accepted


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("1m30s", 90), ("2h", 7200), ("250ms", 0.25), ("1h2m3.5s", 3723.5), ("PT1M", 60),
     ("P1DT2H", 93600), ("PT0.5S", 0.5), ("45", 45), ("0.5", 0.5), (" 3s ", 3)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["soon", "", "P", "PT", "1m30", "3 s", "1d", "s"])
def test_not_durations(text: str) -> None:
    with pytest.raises(ValueError, match="such as 90s"):
        parse_duration(text)


def test_sizes() -> None:
    sizes = [parse_size(v) for v in ("256Mi", "1G", "1Ki", "1024", 2048)]
    assert sizes == [256 << 20, 10**9, 1024, 1024, 2048]
    for bad in ("lots", "1.5", "100m"):
        with pytest.raises(ValueError, match="256Mi"):
            parse_size(bad)


@pytest.mark.parametrize(
    ("command", "variable"),
    [
        (["-m", "runtime"], "PAR_REQUEST_TIMEOUT_SEC"),
        (["-m", "cli.main", "gateway", "serve"], "PAR_GATEWAY_MAX_STALENESS"),
        (["-m", "cli.main", "eventing", "serve"], "PAR_EVENTING_PRODUCE_TIMEOUT"),
        (["-m", "cli.main", "up", "--port", "0"], "PAR_SCALE_TO_ZERO_AFTER"),
        (["-m", "cli.main", "up", "--port", "0"], "PAR_GATEWAY_UPSTREAM_TIMEOUT"),  # checked before any part
        (["-m", "cli.main", "up", "--port", "0"], "PAR_EVENTING_DELIVERY_TIMEOUT"),
        (["-m", "cli.main", "registry", "serve"], "PAR_DB_TIMEOUT"),
    ],
)
def test_a_bad_value_is_one_line_and_exit_2(command: list[str], variable: str, tmp_path: Path) -> None:
    env = {**os.environ, variable: "soon", "PAR_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, *command], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and f"invalid setting {variable}: expected a duration" in lines[0], done.stderr
    assert "'soon'" in lines[0]


def test_the_settings_reference_is_current(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/settings.md is what scripts/settings_reference.py writes from the classes now."""
    from cli.settings import reference

    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    text = reference()
    assert all(f"`{env_names(cls, n, f)[0]}`" in text for cls, n, f in (p.values for p in FIELDS))
    assert (ROOT / "docs" / "settings.md").read_text() == text, "run scripts/settings_reference.py"


NUMERIC = re.compile(r"\b(int|float)\b")


def _bounds(field: FieldInfo) -> dict[str, float]:
    """The field's numeric range (pydantic Field constraints), from the field or its tuple's items."""
    import annotated_types as at

    found: dict[str, float] = {}
    metadata = list(field.metadata)
    for arg in getattr(field.annotation, "__args__", ()):  # tuple[Port, ...]
        metadata += list(getattr(arg, "__metadata__", ()))
    for meta in metadata:
        for kind in ("gt", "ge", "lt", "le"):
            if isinstance(meta, getattr(at, kind.capitalize())):
                found[kind] = getattr(meta, kind)
        if isinstance(meta, FieldInfo):
            found.update(_bounds(meta))
    return found


@pytest.mark.parametrize(("cls", "name", "field"), FIELDS)
def test_every_numeric_setting_has_its_range(
    cls: type[BaseSettings], name: str, field: FieldInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17: `PAR_MAX_INSTANCES_PER_REVISION=-3` started and hung every invoke. Every count,
    duration, size, ratio and port says what it can work with; out of range is the same one line
    naming the variable as a bad duration is."""
    if not NUMERIC.search(str(field.annotation)):
        return
    variable = env_names(cls, name, field)[0]
    bounds = _bounds(field)
    assert "ge" in bounds or "gt" in bounds, f"{variable} takes any number: give it a range (Field(ge=...))"
    below = bounds["gt"] if "gt" in bounds else bounds["ge"] - 1
    outside = [below] + ([bounds["le"] + 1] if "le" in bounds else [])
    for value in outside:
        text = str(int(value)) if float(value).is_integer() else str(value)
        if _kind(field) == "size" and value < 0:
            continue  # a size is never negative: parse_size refuses it already
        with pytest.raises(ValidationError) as refused:
            _build(cls, variable, text, monkeypatch)
        line = describe(refused.value, cls)
        assert "\n" not in line and line.startswith(f"invalid setting {variable}: "), line
        assert repr(text) in line and ("greater" in line or "less" in line), line


@pytest.mark.parametrize(
    ("command", "variable", "value"),
    [
        (["-m", "cli.main", "up", "--port", "0"], "PAR_MAX_INSTANCES_PER_REVISION", "-3"),
        (["-m", "cli.main", "up", "--port", "0"], "PAR_OUTBOUND_PORTS", "53,70000"),
        (["-m", "runtime"], "PAR_APKG_MAX_FILES", "0"),
        (["-m", "cli.main", "gateway", "serve"], "PAR_GATEWAY_UPSTREAM_MAX_CONNECTIONS", "0"),
        (["-m", "cli.main", "eventing", "serve"], "PAR_EVENTING_MAX_IN_FLIGHT", "0"),
        (["-m", "cli.main", "registry", "serve"], "PAR_DB_TIMEOUT", "-1"),
    ],
)
def test_an_out_of_range_value_is_one_line_and_exit_2(
    command: list[str], variable: str, value: str, tmp_path: Path
) -> None:
    env = {**os.environ, variable: value, "PAR_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, *command], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and f"invalid setting {variable}: " in lines[0], done.stderr
    assert "Traceback" not in done.stderr
