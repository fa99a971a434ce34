"""Structured logging shared by every PAR component: one JSON object per line on stderr.

Components call `configure("gateway")` once at start; anything passed in `extra=` becomes a
top-level field, so `log.info("request", extra={"route": "/invoke", "status": 200})` yields
`{"ts": ..., "level": "info", "component": "runtime", "msg": "request", "route": "/invoke", ...}`.
"""

from __future__ import annotations

import json
import logging
import sys

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


def configure(component: str, level: str | int = "INFO") -> None:
    """Route the root logger (and uvicorn's) to one JSON line per record on stderr."""
    handler = logging.StreamHandler(sys.stderr)
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


