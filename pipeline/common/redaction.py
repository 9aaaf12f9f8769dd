"""Secrets never reach a log: `redact` masks them in text, `RedactingFilter` in log records."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["RECORD_ATTRS", "RedactingFilter", "redact"]

_REDACTED = "[REDACTED]"
_SENSITIVE_KEY = re.compile(
    r"(token|password|passwd|secret|authorization|api_?key|credential)", re.IGNORECASE
)
_BEARER = re.compile(r"\b(bearer)\s+[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_KEY_VALUE = re.compile(
    # \\? : the key may sit inside JSON that was itself embedded in a JSON string (\"token\")
    r"""(?P<key>\\?["']?\b[A-Za-z_]*(?:token|password|passwd|secret|api_?key)\\?["']?\s*[:=]\s*)"""
    r"""(?!\\?["']?\[REDACTED\])"""  # already masked: redact() stays idempotent
    # An unquoted value runs to whitespace or a quote, not to '&' ',' ';' '}': a password may
    # contain those, and over-masking the rest of a query string is the safe mistake.
    r"""(?P<value>\\"(?:(?!\\").)*\\"|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'"""
    r"""|(?:bearer\s+)?[^\s"']+)""",
    re.IGNORECASE,
)


def _mask_value(match: re.Match[str]) -> str:
    value = match.group("value")
    quote = value[:2] if value.startswith('\\"') else value[0] if value[:1] in "'\"" else ""
    return f"{match.group('key')}{quote}{_REDACTED}{quote}"


def redact(text: str) -> str:
    """Mask bearer tokens, JWTs and the values of token/password/secret/api_key settings."""
    text = _KEY_VALUE.sub(_mask_value, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {_REDACTED}", text)
    return _JWT.sub(_REDACTED, text)


def _redact_value(key: str, value: Any) -> Any:
    if _SENSITIVE_KEY.search(key) and isinstance(value, (str, bytes)):
        return _REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(key, v) for v in value]
    return value


# Attributes every LogRecord has: anything else on a record came in through `extra=`.
RECORD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message", "asctime", "taskName", "color_message",  # color_message: uvicorn's ANSI twin
}


class RedactingFilter(logging.Filter):
    """Rewrites each record so that no handler downstream can print a secret.

    Works on the rendered message (args included), on extra fields (by key name and by value)
    and on the exception text, which is rendered here once so it can be scrubbed too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        for key in set(record.__dict__) - RECORD_ATTRS:
            setattr(record, key, _redact_value(key, record.__dict__[key]))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
