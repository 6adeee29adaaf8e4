"""Log formatting: JSON lines in production, readable text locally (``LOG_FORMAT``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson

from healthtrack.context import current_request_context

# Where the app leaves its part of the request's log line (user id, client address,
# level) in the WSGI environ, for gunicorn's access line to carry when that line is the
# request's one line (``REQUEST_LOG_BY_SERVER``; healthtrack.serving.GunicornLogger).
REQUEST_LOG_ENVIRON_KEY = "healthtrack.request_log"

# Attributes every LogRecord has; anything else passed through ``extra=`` is included
# in the JSON line as a field of its own.
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()) | {
    "message",
    "asctime",
    "request_id",
    "user_id",
    "path",
    "method",
}


class RequestContextFilter(logging.Filter):
    """Attach the current request's id, user and path to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = current_request_context()
        if not hasattr(record, "request_id"):
            record.request_id = context.request_id if context else "-"
        if not hasattr(record, "user_id"):
            record.user_id = context.user_id if context else None
        if not hasattr(record, "path"):
            record.path = context.path if context else None
        if not hasattr(record, "method"):
            record.method = context.method if context else None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and request context."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "user_id": getattr(record, "user_id", None),
            "path": getattr(record, "path", None),
            "method": getattr(record, "method", None),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()
