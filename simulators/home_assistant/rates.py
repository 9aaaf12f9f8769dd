"""Rates and times as a scenario writes them: ``'20/s'``, ``'1200/min'``, ``'90s'``, ``'5m'``.

Parsed once here so the load profiles, the scenario loader and its JSON schema read the same
syntax (the schema builds its patterns from :data:`PER_UNIT`).
"""

from __future__ import annotations

import contextlib
import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator

from .durations import parse_duration
from .limits import MAX_RATE, RATE_WHY, OutOfBounds

__all__ = ["PER_UNIT", "Rate", "Seconds", "parse_rate", "parse_seconds"]

_RATE_HINT = "expected a number of events per second like '20/s', '1200/min' or '36000/h'"
_RATE_RE = re.compile(r"\s*([^/\s]+)\s*(?:/\s*([A-Za-z]+))?\s*")
PER_UNIT = {
    "s": 1.0, "sec": 1.0, "second": 1.0,
    "m": 60.0, "min": 60.0, "minute": 60.0,
    "h": 3600.0, "hr": 3600.0, "hour": 3600.0,
}  # fmt: skip


def parse_rate(text: str | float | int) -> float:
    """Events per second from ``20``, ``"20/s"``, ``"1200/min"`` (or ``/m``) or ``"36000/h"``."""
    # bool is an int subclass; `rate: true` in YAML is a mistake, not 1/s.
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ValueError(f"rate {text!r}: {_RATE_HINT}")
    if isinstance(text, str):
        match = _RATE_RE.fullmatch(text)
        per = PER_UNIT.get((match.group(2) or "s").lower()) if match else None
        if match is None or per is None:
            raise ValueError(f"rate {text!r}: {_RATE_HINT}")
        try:
            value = float(match.group(1))
        except ValueError:
            raise ValueError(f"rate {text!r}: {_RATE_HINT}") from None
    else:
        value, per = float(text), 1.0
    if not math.isfinite(value):
        raise ValueError(f"rate {text!r}: {_RATE_HINT}")
    if value < 0:
        raise ValueError(f"rate {text!r}: must not be negative; {_RATE_HINT}")
    if value / per > MAX_RATE:
        raise OutOfBounds(f"rate {text!r}: at most {MAX_RATE:g}/s, {RATE_WHY}")
    return value / per


Rate = Annotated[float, BeforeValidator(parse_rate)]
"""A pydantic field type: a number (per second) or a string :func:`parse_rate` understands."""


def parse_seconds(value: Any) -> float:
    """Seconds from a number or a duration (``'90s'``, ``'5m'``); too large an int is inf."""
    # The one duration syntax ('90s', '5m', a bare number of seconds, '1e9' as before); the
    # bounds are checked with the profile's other sizes (_within_bounds), in their words.
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    try:
        return parse_duration(value, maximum=math.inf)
    except OverflowError:  # an int too large for a float: past every bound
        return math.inf


Seconds = Annotated[float, BeforeValidator(parse_seconds)]
"""A pydantic field type: seconds, as a number or in the duration syntax (``'90s'``, ``'5m'``)."""
