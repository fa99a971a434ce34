"""Log lines: human on a terminal (or PAR_LOG_FORMAT=human), JSON otherwise; library chatter and
what is polled every few seconds stay below INFO."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram

from runtime.jsonlog import HumanFormatter, JsonFormatter, configure


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _record(name: str = "registry.reconciler", level: int = logging.INFO, **extra: object) -> logging.LogRecord:  # noqa: E501
    record = logging.LogRecord(name, level, __file__, 1, "status", None, None)
    record.__dict__.update(extra)
    return record


def test_a_human_line_names_the_component_message_and_fields() -> None:
    line = HumanFormatter("platform", colour=False).format(
        _record(agent="default/demo-agent", phase="ready", note="two words")
    )
    assert line.split(" ", 1)[1] == 'registry  status agent=default/demo-agent phase=ready note="two words"'
    assert "\x1b[" not in line


def test_warnings_stand_out() -> None:
    plain = HumanFormatter("platform", colour=False).format(_record(level=logging.WARNING))
    assert "warning: status" in plain
    coloured = HumanFormatter("platform", colour=True).format(_record(level=logging.WARNING))
    assert "\x1b[33m" in coloured


@pytest.mark.parametrize(("setting", "human"), [("human", True), ("json", False), ("auto", False)])
def test_format_follows_par_log_format(setting: str, human: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAR_LOG_FORMAT", setting)
    monkeypatch.setattr("sys.stderr", io.StringIO())  # not a terminal: auto means JSON
    configure("gateway")
    formatter = logging.getLogger().handlers[0].formatter
    assert isinstance(formatter, HumanFormatter if human else JsonFormatter)
    if not human:
        logging.getLogger("gateway.feed").info("policy loaded", extra={"keys": 3})
        import sys

        assert json.loads(sys.stderr.getvalue().splitlines()[-1])["keys"] == 3


def test_library_chatter_is_below_info(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAR_LOG_FORMAT", "json")
    configure("registry")
    for name in ("httpx", "alembic.runtime.migration"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name


@pytest.mark.parametrize(
    ("route", "query", "status", "level"),
    [
        ("/v1/gateway/snapshot", b"", 304, logging.DEBUG),  # the gateway's poll, every 2 s
        ("/console/agents", b"live=1", 200, logging.DEBUG),  # the console's live refresh
        ("/console/agents", b"", 200, logging.INFO),
        ("/v1/gateway/snapshot", b"", 401, logging.INFO),  # a failing poll is worth a line
        ("/v1/namespaces/{namespace}/agents", b"", 201, logging.INFO),
    ],
)
def test_registry_polls_are_debug(
    route: str, query: bytes, status: int, level: int, caplog: pytest.LogCaptureFixture
) -> None:
    from registry.app import _Observe

    metrics = CollectorRegistry()
    observer = _Observe(
        None,  # type: ignore[arg-type]
        Counter("r", "r", ["method", "route", "status"], registry=metrics),
        Histogram("l", "l", ["method", "route"], registry=metrics),
    )
    route_object = type("Route", (), {"path": route})()
    scope = {"method": "GET", "path": route, "route": route_object, "query_string": query}
    with caplog.at_level(logging.DEBUG, logger="registry"):
        observer.finished(scope, status, 0.001)
    assert [r.levelno for r in caplog.records if r.name == "registry"] == [level]
