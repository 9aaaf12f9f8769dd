"""Durations as scenario files write them: ``30s``, ``5m``, ``250ms``, ``2h``, ``8d``."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """``5m`` / ``30s`` / ``250ms`` / ``2h`` / ``8d`` / a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError(f"duration {value!r}: expected a duration like '30s', '5m', '2h'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"duration {value!r}: must not be negative")
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"duration {value!r}: expected a duration like '30s', '5m', '250ms', '2h'")
    return float(match.group(1)) * _UNITS[match.group(2)]


Duration = Annotated[float, BeforeValidator(parse_duration)]
