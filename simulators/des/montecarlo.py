"""Monte Carlo: the same scenario under N seeds, and the distribution of what happened.

For each trigger, the share of runs it rolled back, and the share of runs that lost any event,
each with a Wilson score 95% interval (well-behaved at 0 and at N out of N, unlike the normal
approximation). Latency, loss and throughput are summarised by their mean and 5th/95th
percentiles across runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from .cluster import ClusterSpec, run_on_cluster
from .model import SimOptions, simulate
from .outcome import Outcome

__all__ = ["Estimate", "MonteCarlo", "run_many", "summarize", "wilson"]

Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes in ``n`` trials."""
    if n <= 0:
        return (0.0, 1.0)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True, slots=True)
class Estimate:
    """``k`` of ``n`` runs: the share and its 95% interval."""

    k: int
    n: int

    @property
    def p(self) -> float:
        return self.k / self.n if self.n else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.k, self.n)

    def as_dict(self) -> dict[str, Any]:
        lo, hi = self.interval
        return {"runs": self.k, "of": self.n, "p": round(self.p, 6),
                "ci95": [round(lo, 6), round(hi, 6)]}


def _spread(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "p5": None, "p95": None}
    ordered = sorted(values)

    def q(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]

    return {"mean": sum(values) / len(values), "p5": q(5), "p95": q(95)}


@dataclass
class MonteCarlo:
    runs: int
    triggers: dict[str, Estimate]  # every scenario trigger (and "gate"), fired or not
    no_rollback: Estimate
    any_loss: Estimate
    passed: Estimate | None  # set by the harness, which judges each run's verdict
    lost: dict[str, float | None]
    p95_ms: dict[str, float | None]
    throughput_eps: dict[str, float | None]
    seeds: list[int]
    outcomes: list[Outcome] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"runs": self.runs, "seeds": [self.seeds[0], self.seeds[-1]] if self.seeds else [],
                "rollback_by_trigger": {k: v.as_dict() for k, v in self.triggers.items()},
                "no_rollback": self.no_rollback.as_dict(), "any_loss": self.any_loss.as_dict(),
                "verdict_passed": self.passed.as_dict() if self.passed else None,
                "lost_events": self.lost, "production_p95_ms": self.p95_ms,
                "throughput_eps": self.throughput_eps}


def summarize(outcomes: list[Outcome], trigger_names: Iterable[str]) -> MonteCarlo:
    n = len(outcomes)
    names = list(dict.fromkeys([*trigger_names, "gate"]))
    fired = {name: sum(1 for o in outcomes if o.rollback.triggered and o.rollback.trigger == name)
             for name in names}
    for o in outcomes:  # a trigger name the scenario does not list (cannot happen, but count it)
        if o.rollback.triggered and o.rollback.trigger not in fired:
            fired[o.rollback.trigger or "?"] = fired.get(o.rollback.trigger or "?", 0) + 1
    if not fired.get("gate"):
        fired.pop("gate", None)
    p95 = [o.latency["production"].p95_s * 1000 for o in outcomes if "production" in o.latency]
    return MonteCarlo(
        runs=n, triggers={k: Estimate(v, n) for k, v in fired.items()},
        no_rollback=Estimate(sum(1 for o in outcomes if not o.rollback.triggered), n),
        any_loss=Estimate(sum(1 for o in outcomes if o.lost > 0), n), passed=None,
        lost=_spread([float(o.lost) for o in outcomes]), p95_ms=_spread(p95),
        throughput_eps=_spread([o.throughput_eps for o in outcomes]),
        seeds=[o.seed for o in outcomes], outcomes=outcomes)


def run_many(scenario: Any, options: SimOptions, runs: int,
             progress: Callable[[int, Outcome], None] | None = None,
             cluster: ClusterSpec | None = None) -> MonteCarlo:
    """``runs`` simulations with seeds ``options.seed``, ``options.seed + 1``, ...: here, or on
    a Dask cluster (``cluster``), with the same summary either way."""
    if cluster is not None:
        outcomes = run_on_cluster(scenario, options, runs, cluster, progress)
    else:
        outcomes = []
        for i in range(runs):
            outcome = simulate(scenario, replace(options, seed=options.seed + i))
            outcomes.append(outcome)
            if progress is not None:
                progress(i, outcome)
    return summarize(outcomes, [t.name for t in scenario.triggers])
