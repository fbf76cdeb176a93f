"""Logs for operators: one JSON object per line (``json``, the default) or one
readable line (``text``), UTC ISO-8601 timestamps to the millisecond, secrets
redacted in both."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

from ecmahost.connectors.secrets import scrub
from pythonjsonlogger import json as json_logger

__all__ = ["JsonFormatter", "LogFormat", "configure_logging", "utc_timestamp"]

LogFormat = Literal["json", "text"]

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def utc_timestamp(created: float) -> str:
    """``2026-12-06T02:30:00.123Z``: UTC, so lines of hosts in several zones sort."""
    moment = datetime.fromtimestamp(created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(json_logger.JsonFormatter):
    """One JSON object per line, through python-json-logger; scrubbed."""

    def __init__(self) -> None:
        super().__init__(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={
                "asctime": "ts",
                "levelname": "level",
                "name": "logger",
                "message": "msg",
                "exc_info": "exc",
            },
            json_ensure_ascii=False,
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return utc_timestamp(record.created)

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        log_data["level"] = record.levelname.lower()

    def format(self, record: logging.LogRecord) -> str:
        # The scrub runs on the finished line: a secret in any field is caught.
        return scrub(super().format(record))


class _Text(logging.Formatter):
    """``TS LEVEL logger: message key=value ...``, the extra fields after the message."""

    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(
            f"{key}={value}"
            for key, value in vars(record).items()
            if key not in _STANDARD and value is not None
        )
        line = (
            f"{utc_timestamp(record.created)} {record.levelname:<7} {record.name}: "
            f"{record.getMessage()}" + (f" {extra}" if extra else "")
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return scrub(line)


def configure_logging(level: str = "info", log_format: LogFormat = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else _Text())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiosqlite", "apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
