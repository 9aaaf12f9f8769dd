"""Durations as scenario files, load profiles and the command line write them: ``30s``, ``5m``,
``250ms``, ``2h``, ``8d``, a bare number meaning seconds. One syntax, written once here (the
fake's load profiles use it, so it lives beside them; ``harness.scenario.durations``
re-exports it)."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator

from simulators.home_assistant.limits import DURATION_WHY, MAX_DURATION_S, human_seconds

DURATION_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any, maximum: float = MAX_DURATION_S) -> float:
    """``5m`` / ``30s`` / ``250ms`` / ``2h`` / ``8d`` / a number of seconds -> seconds, at
    most ``maximum`` (a month: see simulators/home_assistant/limits.py)."""
    if isinstance(value, bool):
        raise ValueError(f"duration {value!r}: expected a duration like '30s', '5m', '2h'")
    if isinstance(value, int | float):
        if isinstance(value, float) and math.isnan(value):  # `.nan` in YAML
            raise ValueError("duration nan: expected a duration like '30s', '5m', '2h'")
        if value < 0:
            raise ValueError(f"duration {value!r}: must not be negative")
        seconds = float(value) if value <= maximum else math.inf  # a huge int overflows float()
    else:
        match = DURATION_PATTERN.match(str(value))
        if not match:
            raise ValueError(f"duration {value!r}: expected a duration like '30s', '5m', "
                             "'250ms', '2h'")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]  # 400 digits: inf, no error
    if not seconds <= maximum:  # NaN and inf too
        shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:36]}..."
        raise ValueError(f"duration {shown}: at most {human_seconds(maximum)}"
                         + (f", {DURATION_WHY}" if maximum == MAX_DURATION_S else ""))
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
