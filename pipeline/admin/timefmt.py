"""Nanosecond timestamps as ISO 8601 UTC strings, for humans reading JSON."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["iso_ns"]


def iso_ns(ns: int) -> str:
    seconds, rest = divmod(ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest // 1000)
    return moment.isoformat(timespec="microseconds")
