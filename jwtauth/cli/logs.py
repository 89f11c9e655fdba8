"""Log lines on standard error: text for a terminal, or one JSON object per line for a collector.

`JWTAUTH_LOG_FORMAT=json|text` (the container image sets json) and `JWTAUTH_LOG_LEVEL`
(DEBUG, INFO, WARNING, ERROR; default INFO) apply to jwtauth's records, granian's server lines
and the CLI's one-line errors alike. A JSON line holds `ts`, `level`, `logger`, `message`, the
`request_id` when the record belongs to a request, and a traceback as one `traceback` field,
so a multi-line stack never splits into lines a collector reads as separate events.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from typing import Any

FORMATS = ("text", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER = "jwtauth-stderr"


class LogSettingError(ValueError):
    """A JWTAUTH_LOG_* variable has a value we do not know; the message names it."""


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object on one line."""

    def __init__(self, logger_name: str | None = None) -> None:
        super().__init__()
        self.logger_name = logger_name  # granian's records are all named after it

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": self.logger_name or record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            line["request_id"] = request_id
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, separators=(",", ":"), default=str)


def choose(env: Mapping[str, str]) -> tuple[str, str]:
    """Return (format, level) from the environment; raise LogSettingError naming a bad variable."""
    chosen = env.get("JWTAUTH_LOG_FORMAT", "text").strip().lower() or "text"
    if chosen not in FORMATS:
        raise LogSettingError(f"JWTAUTH_LOG_FORMAT: must be json or text, not {chosen[:20]!r}")
    level = env.get("JWTAUTH_LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if level not in LEVELS:
        raise LogSettingError(f"JWTAUTH_LOG_LEVEL: must be one of {', '.join(LEVELS)}, not {level[:20]!r}")
    return chosen, level


def configure(log_format: str, level: str) -> None:
    """Send every record of `level` and above to standard error in `log_format`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    handler.set_name(_HANDLER)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER]:  # ours, from an earlier call
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def granian_config(log_format: str, level: str) -> dict[str, Any]:
    """Return granian's logging dictConfig: its lines on standard error in jwtauth's format."""
    if log_format == "json":
        formatter: dict[str, Any] = {"()": JsonFormatter, "logger_name": "granian"}
    else:
        formatter = {"()": "logging.Formatter", "fmt": "%(asctime)s %(levelname)s granian: %(message)s"}
    return {
        "formatters": {"generic": formatter},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "generic", "stream": "ext://sys.stderr"}
        },
        "loggers": {"_granian": {"handlers": ["console"], "level": level, "propagate": False}},
    }


def operator_error(message: str, log_format: str) -> None:
    """Write the CLI's one-line error: `jwtauth: …` as text, or a JSON line."""
    if log_format == "json":
        record = logging.LogRecord("jwtauth.cli", logging.ERROR, __file__, 0, message, None, None)
        print(JsonFormatter().format(record), file=sys.stderr)
    else:
        print(f"jwtauth: {message}", file=sys.stderr)
