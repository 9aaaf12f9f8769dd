"""Home Assistant's wire formats for time and identity.

Home Assistant serialises datetimes with ``datetime.isoformat()`` on aware UTC values, so a
timestamp always carries microseconds (``.000000`` included) and ``+00:00``; context ids are
26-character ULIDs (48-bit millisecond time + 80 random bits, Crockford base32).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from functools import lru_cache

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Two Crockford characters per 10 bits: ULIDs are made on the hot path of every event.
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]


@lru_cache(maxsize=4096)
def _second_prefix(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def iso_from_ns(ts_ns: int) -> str:
    """``2026-06-25T21:20:05.162552+00:00`` for a Unix time in nanoseconds.

    isoformat() drops the fraction when microsecond == 0; Home Assistant's never does.
    """
    seconds, rem = divmod(ts_ns, 1_000_000_000)
    return f"{_second_prefix(seconds)}.{rem // 1000:06d}+00:00"


def ns_from_iso(text: str) -> int:
    """Inverse of :func:`iso_from_ns` (any ISO 8601 with an offset), to the microsecond."""
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset")
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def ulid(ts_ns: int, rng: random.Random) -> str:
    """A 26-character ULID for the given time; randomness from ``rng`` so a seed reproduces it."""
    return _time_part(ts_ns // 1_000_000) + _random_part(rng.getrandbits(80))


@lru_cache(maxsize=1024)
def _time_part(ms: int) -> str:
    """The first 10 characters: 48 bits of milliseconds (the top 2 bits of 50 are zero)."""
    return _CROCKFORD[(ms >> 45) & 31] + "".join(
        _PAIRS[(ms >> shift) & 1023] for shift in (35, 25, 15, 5)) + _CROCKFORD[ms & 31]


def _random_part(bits: int) -> str:
    """The last 16 characters: 80 random bits."""
    p = _PAIRS
    return (p[(bits >> 70) & 1023] + p[(bits >> 60) & 1023] + p[(bits >> 50) & 1023]
            + p[(bits >> 40) & 1023] + p[(bits >> 30) & 1023] + p[(bits >> 20) & 1023]
            + p[(bits >> 10) & 1023] + p[bits & 1023])
