"""What one simulated run concluded: plain dataclasses the harness turns into a ``RunResult``
(harness/simulation.py), so this package needs nothing from the harness."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.scenario.rules.timeline import Marker, PhaseSpan

from .books import LatencyFigures

__all__ = ["Marker", "Outcome", "PhaseSpan", "RollbackInfo", "Sample"]


@dataclass(slots=True)
class Sample:
    """One point of the timeline (the monitor takes one every ``sample_every`` seconds)."""

    t_s: float
    phase: str
    new_percent: int
    shadow: bool
    emitted: int
    stored: int
    throughput_eps: float
    p95_ms: float | None
    error_rate: float
    queue_depth: int
    healthy: dict[str, bool]


@dataclass(slots=True)
class RollbackInfo:
    triggered: bool = False
    trigger: str | None = None
    at_s: float | None = None
    evidence: str = ""


@dataclass
class Outcome:
    scenario: str
    seed: int
    time_scale: float
    load_scale: float
    duration_s: float
    counts: dict[str, int]
    lost_by_cause: dict[str, int]
    latency: dict[str, LatencyFigures]
    error_rate: float
    availability: float
    throughput_eps: float
    perf_drop: float | None
    phases: list[PhaseSpan]
    markers: list[Marker]
    samples: list[Sample]
    rollback: RollbackInfo
    services: dict[str, dict[str, float]]
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    not_modelled: list[str] = field(default_factory=list)
    aborted: str | None = None
    backpressure_closes: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    jobs: int = 0  # micro-batches the source fired

    @property
    def lost(self) -> int:
        return self.counts["lost"]
