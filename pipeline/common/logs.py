"""Service logs: one JSON object per line, secrets redacted before anything is written."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from pipeline.common.redaction import RECORD_ATTRS, RedactingFilter

__all__ = ["JsonFormatter", "configure_logging"]


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, service, logger, message, then extra fields."""

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self.service_name = service_name

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds"),
            "level": record.levelname.lower(),
            "service": self.service_name,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in record.__dict__.keys() - RECORD_ATTRS:
            if key not in doc:
                doc[key] = record.__dict__[key]
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exc"] = record.exc_text
        if record.stack_info:
            doc["stack"] = record.stack_info
        # default=str: an extra field of any type is logged rather than crashing the handler.
        return orjson.dumps(doc, default=str).decode()


def configure_logging(
    service_name: str,
    level: int | str = "INFO",
    *,
    stream: TextIO | None = None,
    logger: logging.Logger | None = None,
) -> logging.Handler:
    """Send `logger` (default: the root logger) to `stream` (default stderr) as JSON lines.

    Idempotent: a handler installed by an earlier call on the same logger is replaced.
    """
    target = logger if logger is not None else logging.getLogger()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(service_name))
    # On the handler, not the logger: logger filters skip records propagated from child loggers.
    handler.addFilter(RedactingFilter())
    handler.set_name(f"ha-cutover-json:{service_name}")
    for old in list(target.handlers):
        if (old.get_name() or "").startswith("ha-cutover-json:"):
            target.removeHandler(old)
    target.addHandler(handler)
    target.setLevel(level.upper() if isinstance(level, str) else level)
    if logger is None:
        # httpx logs every request at INFO: one line per InfluxDB write or forwarded batch.
        logging.getLogger("httpx").setLevel(logging.WARNING)
    return handler
