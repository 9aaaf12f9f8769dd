"""Home Assistant's wire formats for time and identity.

Home Assistant serialises datetimes with ``datetime.isoformat()`` on aware UTC values, so a
timestamp always carries microseconds (``.000000`` included) and ``+00:00``; context ids are
26-character ULIDs (48-bit millisecond time + 80 random bits, Crockford base32).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def iso_from_ns(ts_ns: int) -> str:
    """``2026-06-25T21:20:05.162552+00:00`` for a Unix time in nanoseconds."""
    seconds, rem = divmod(ts_ns, 1_000_000_000)
    dt = datetime.fromtimestamp(seconds, UTC).replace(microsecond=rem // 1000)
    # isoformat() drops the fraction when microsecond == 0; Home Assistant's never does.
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def ns_from_iso(text: str) -> int:
    """Inverse of :func:`iso_from_ns` (any ISO 8601 with an offset), to the microsecond."""
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset")
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def ulid(ts_ns: int, rng: random.Random) -> str:
    """A 26-character ULID for the given time; randomness from ``rng`` so a seed reproduces it."""
    value = ((ts_ns // 1_000_000) << 80) | rng.getrandbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))
