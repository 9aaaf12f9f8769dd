"""How numbers read in the report: units by metric, thousands separators, short durations.

Kept apart from the rendering so the rules are in one place and testable on their own.
SLO targets and measurements follow ``harness.scenario.model.Threshold``'s units: seconds for
latency, fractions for percentages, events per second for throughput, plain counts otherwise.
"""

from __future__ import annotations

import math
import re
from datetime import datetime

# Threshold metric names that are written as percentages and stored as fractions.
_FRACTION_METRICS = frozenset({"error_rate", "availability", "perf_drop"})
_COUNT_METRICS = frozenset({"loss", "lost", "duplicated", "unexpected", "inconsistent"})
_LATENCY_METRIC = re.compile(r"^p\d+(\.\d+)?$")  # "p95", "p99.9": see Threshold.parse


def count(value: int | float) -> str:
    """12345 -> '12,345' (thin enough to read, unambiguous in every locale we care about)."""
    return f"{int(value):,}"


def number(value: float, digits: int = 3) -> str:
    """A float with at most ``digits`` significant decimals and no trailing zeros."""
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.1f}"
    return f"{value:.{digits}g}"


def ms(value: float) -> str:
    """Milliseconds: whole numbers above 10 ms, one decimal below (sub-ms latencies exist)."""
    return f"{value:,.0f} ms" if abs(value) >= 10 else f"{value:.1f} ms"


def percent(fraction: float) -> str:
    """A fraction as a percentage with enough decimals to tell 99.9% from 100%."""
    pct = fraction * 100
    if pct == 0 or pct == 100:
        return f"{pct:.0f}%"
    if abs(pct) >= 10:
        return f"{pct:.2f}%"
    return f"{pct:.3g}%"


def rate(eps: float) -> str:
    return f"{number(eps, 3)}/s"


def slo_value(metric: str, value: float | None) -> str:
    """A target or measurement in the unit a person expects for its metric."""
    if value is None:
        return "not measured"
    if _LATENCY_METRIC.match(metric):
        return ms(value * 1000)  # Threshold stores latency in seconds
    if metric in _FRACTION_METRICS:
        return percent(value)
    if metric == "throughput":
        return rate(value)
    if metric in _COUNT_METRICS:
        return count(value)
    return number(value)


def duration(seconds: float) -> str:
    """92.5 -> '1m 32.5s', 7260 -> '2h 01m': the precision a run's length needs."""
    if seconds < 60:
        return f"{number(seconds, 3)}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        secs_text = f"{secs:02.0f}" if secs == int(secs) else f"{secs:04.1f}"
        return f"{int(minutes)}m {secs_text}s"
    hours, minutes = divmod(int(minutes), 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def timestamp(iso: str) -> str:
    """An ISO timestamp as 'YYYY-MM-DD HH:MM:SS UTC±hh:mm'; unparseable text is shown as is."""
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    offset = moment.strftime("%z")
    if not offset:
        return text
    return f"{text} UTC" if offset == "+0000" else f"{text} UTC{offset[:3]}:{offset[3:]}"
