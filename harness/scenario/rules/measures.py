"""How a figure is measured from counters, and how it reads beside its threshold."""

from __future__ import annotations

from typing import Protocol


class _Metric(Protocol):
    @property
    def metric(self) -> str: ...


def error_rate(errors: float, received: float) -> float:
    """Errors per event received over a span of two counter readings. Errors with nothing
    received (every request refused before it counted) is a rate of 1, not a division by 0."""
    if received <= 0:
        return 0.0 if errors <= 0 else 1.0
    return max(0.0, errors) / received


def is_latency(metric: str) -> bool:
    """``p95``, ``p99.9``: a latency percentile, in seconds (``perf_drop`` is a ratio)."""
    return metric.startswith("p") and metric != "perf_drop"


def format_measured(threshold: _Metric, value: float | None) -> str:
    """The measured value in the threshold's own unit: "41.3 ms", "1.20%", "4"."""
    if value is None:
        return "n/a"
    metric = threshold.metric
    if is_latency(metric):
        return f"{value * 1000:.1f} ms"
    if metric in ("error_rate", "availability", "perf_drop"):
        return f"{value * 100:.2f}%"
    return f"{value:g}"
