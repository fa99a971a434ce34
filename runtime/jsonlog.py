"""Logging shared by every PAR component: one line per record on stderr, for people or machines.

Components call `configure("gateway")` once at start; anything passed in `extra=` becomes a
field, so `log.info("request", extra={"route": "/invoke", "status": 200})` yields
`{"ts": ..., "level": "info", "component": "runtime", "msg": "request", "route": "/invoke", ...}`
as JSON (not a terminal, or `PAR_LOG_FORMAT=json`), and on a terminal (or `PAR_LOG_FORMAT=human`)
`14:02:31 runtime   request  route=/invoke status=200`, coloured unless `NO_COLOR` is set.
Library chatter (each HTTP client request, Alembic's set-up) stays below INFO.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Attributes every LogRecord has; anything else on a record came from `extra=`.
# uvicorn adds `color_message` (the message with ANSI colours) to its records: noise in JSON.
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "color_message",
}


class JsonFormatter(logging.Formatter):
    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "component": self.component,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


_LEVEL_COLOURS = {"WARNING": "\x1b[33m", "ERROR": "\x1b[31m", "CRITICAL": "\x1b[1;31m", "DEBUG": "\x1b[2m"}
_DIM, _BOLD, _CYAN, _RESET = "\x1b[2m", "\x1b[1m", "\x1b[36m", "\x1b[0m"
QUIET_LIBRARIES = ("httpx", "httpcore", "alembic", "aiokafka", "kubernetes.client.rest")


class HumanFormatter(logging.Formatter):
    """`HH:MM:SS component  message  key=value ...`; the component is the logger's first part
    (one `par up` process logs for registry, gateway, serving and eventing alike)."""

    def __init__(self, component: str, colour: bool) -> None:
        super().__init__()
        self.component, self.colour = component, colour

    def _paint(self, code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if self.colour else text

    def format(self, record: logging.LogRecord) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        part = record.name.split(".")[0]
        who = part if part not in ("root", "par", "__main__") else self.component
        message = record.getMessage()
        level = record.levelname
        if level != "INFO":
            message = self._paint(_LEVEL_COLOURS.get(level, ""), f"{level.lower()}: {message}")
        fields = [
            self._paint(_DIM, f"{key}=") + _value(value)
            for key, value in record.__dict__.items()
            if key not in _RESERVED and not key.startswith("_")
        ]
        line = " ".join([self._paint(_DIM, clock), self._paint(_CYAN, f"{who:<9}"), message, *fields])
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _value(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return json.dumps(text) if not text or any(c in text for c in ' "=') else text


class LogSettings(BaseSettings):
    """How every component writes its log lines."""

    model_config = SettingsConfigDict(extra="ignore")

    log_format: Literal["auto", "human", "json"] = Field(
        "auto", validation_alias="PAR_LOG_FORMAT",
        description="auto: human lines on a terminal, JSON lines otherwise",
    )


def configure(component: str, level: str | int = "INFO") -> None:
    """Route the root logger (and uvicorn's) to one line per record on stderr: human on a
    terminal, JSON otherwise (`PAR_LOG_FORMAT` decides when set)."""
    handler = logging.StreamHandler(sys.stderr)
    chosen = LogSettings().log_format
    tty = sys.stderr.isatty()
    if chosen == "human" or (chosen == "auto" and tty):
        handler.setFormatter(HumanFormatter(component, colour=tty and "NO_COLOR" not in os.environ))
    else:
        handler.setFormatter(JsonFormatter(component))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level if isinstance(level, int) else level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    # Our own per-request line replaces uvicorn's access log.
    logging.getLogger("uvicorn.access").disabled = True
    for name in QUIET_LIBRARIES:  # one line per internal poll, or set-up chatter, otherwise
        logging.getLogger(name).setLevel(logging.WARNING)


