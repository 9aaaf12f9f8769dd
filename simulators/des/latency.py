"""Latency as the model computes it: a calibrated unloaded latency per path plus the waiting
the model adds.

An event's latency (``stored_at - time_fired``, as the harness measures it) is ``L + D``:

- ``L`` is what the path takes when nothing waits (websocket read, group commit, the HTTP hops,
  the batch windows): a shifted log-normal per path, fitted to a real run's p50/p95/p99
  (:func:`ShiftedLogNormal.fit`);
- ``D`` is what the model adds for the job (micro-batch) carrying the event: time queued
  behind busy servers, retries and their backoff, a breaker's cool-down, a paused or dead
  neighbour, a full batch window missed because a write was in progress.

Events are never drawn one by one. Each path keeps a histogram of ``D`` weighted by event
counts (log bins 2% wide, plus an exact-zero bin), and a percentile of ``L + D`` is solved from
the mixture ``sum_b w_b F_L(x - D_b)`` by bisection: exact for the model's ``D`` up to the bin
width, O(1) per job to record, and independent of how many events a job carries. With one bin
(the common case: nothing waited) it is ``D + L``'s quantile in closed form.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["BIN_RATIO", "ShiftedLogNormal", "bin_of", "bin_value", "mixture_quantile"]

_Z = {50.0: 0.0, 95.0: 1.6448536269514722, 99.0: 2.3263478740408408}
_D0 = 1e-4  # waits shorter than 0.1 ms count as none
BIN_RATIO = 1.02
_LOG_RATIO = math.log(BIN_RATIO)
_SQRT2 = math.sqrt(2.0)


def bin_of(d: float) -> int:
    """The histogram bin of a wait ``d`` (seconds): 0 for none, else a 2%-wide log bin."""
    if d < _D0:
        return 0
    return 1 + int(math.log(d / _D0) / _LOG_RATIO)


def bin_value(b: int) -> float:
    """The wait a bin stands for (its geometric middle; 0 for bin 0)."""
    return 0.0 if b <= 0 else _D0 * BIN_RATIO ** (b - 0.5)


def _z(q: float) -> float:
    """Standard normal quantile (Acklam's rational approximation, |error| < 1.2e-9)."""
    if q in _Z:
        return _Z[q]
    p = q / 100.0
    if not 0.0 < p < 1.0:
        raise ValueError(f"quantile {q} out of (0, 100)")
    a = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
         1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
    b = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
         6.680131188771972e01, -1.328068155288572e01)
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
         -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00,
         3.754408661907416e00)
    lo = 0.02425
    if p < lo:
        r = math.sqrt(-2 * math.log(p))
        return (((((c[0] * r + c[1]) * r + c[2]) * r + c[3]) * r + c[4]) * r + c[5]) / \
            ((((d[0] * r + d[1]) * r + d[2]) * r + d[3]) * r + 1)
    if p > 1 - lo:
        r = math.sqrt(-2 * math.log(1 - p))
        return -(((((c[0] * r + c[1]) * r + c[2]) * r + c[3]) * r + c[4]) * r + c[5]) / \
            ((((d[0] * r + d[1]) * r + d[2]) * r + d[3]) * r + 1)
    r = p - 0.5
    s = r * r
    return (((((a[0] * s + a[1]) * s + a[2]) * s + a[3]) * s + a[4]) * s + a[5]) * r / \
        (((((b[0] * s + b[1]) * s + b[2]) * s + b[3]) * s + b[4]) * s + 1)


@dataclass(frozen=True, slots=True)
class ShiftedLogNormal:
    """``shift + exp(mu + sigma * Z)`` seconds."""

    shift: float
    mu: float
    sigma: float

    def quantile(self, q: float) -> float:
        return self.shift + math.exp(self.mu + self.sigma * _z(q))

    def cdf(self, x: float) -> float:
        y = x - self.shift
        if y <= 0:
            return 0.0
        return 0.5 * (1.0 + math.erf((math.log(y) - self.mu) / (self.sigma * _SQRT2)))

    @classmethod
    def fit(cls, p50: float, p95: float, p99: float | None = None) -> ShiftedLogNormal:
        """The distribution through p50, p95 and (when a shift can honour it) p99, in seconds.

        With p99 the shift is solved so that all three quantiles hold; a tail too light for
        that (p99 closer to p95 than a log-normal allows) gets no shift and fits p50/p95.
        """
        if not 0 < p50 <= p95:
            raise ValueError(f"latency quantiles must satisfy 0 < p50 <= p95; got p50={p50}, "
                             f"p95={p95}")
        p95 = max(p95, p50 * 1.001)
        z95, z99 = _Z[95.0], _Z[99.0]
        shift = 0.0
        if p99 is not None and p99 > p95:
            def g(s: float) -> float:
                return (math.log(p99 - s) - math.log(p50 - s)) \
                    - (z99 / z95) * (math.log(p95 - s) - math.log(p50 - s))
            if g(0.0) > 0:
                lo, hi = 0.0, p50 * (1 - 1e-9)
                for _ in range(100):
                    mid = (lo + hi) / 2
                    if g(mid) > 0:
                        lo = mid
                    else:
                        hi = mid
                shift = lo
        mu = math.log(p50 - shift)
        sigma = (math.log(p95 - shift) - mu) / z95
        return cls(shift, mu, max(sigma, 1e-6))


Component = tuple[ShiftedLogNormal, float, float]  # (L, D seconds, weight)


def components(dist: ShiftedLogNormal, bins: dict[int, float]) -> Iterable[Component]:
    for b, w in bins.items():
        if w > 0:
            yield dist, bin_value(b), w


def mixture_quantile(parts: list[Component], q: float) -> float | None:
    """The ``q``-th percentile (0..100) of the mixture of ``L + D`` components; None if empty."""
    total = sum(w for _, _, w in parts)
    if total <= 0:
        return None
    if len(parts) == 1:
        dist, d, _ = parts[0]
        return d + dist.quantile(q)
    target = q / 100.0 * total
    lo = min(d + dist.shift for dist, d, _ in parts)
    hi = max(d + dist.quantile(min(99.9999, 100 - 1e-4)) for dist, d, _ in parts)
    for _ in range(60):
        mid = (lo + hi) / 2
        if sum(w * dist.cdf(mid - d) for dist, d, w in parts) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-7 + 1e-4 * lo:
            break
    return (lo + hi) / 2
