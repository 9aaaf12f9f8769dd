"""What a run concluded, as it is written to ``run.json`` in the run directory.

The HTML report is rendered from this file alone (``cutover report RUN_DIR`` renders it again),
so everything a person reads in the report is here: the verdict and the evidence behind it.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from harness.scenario.rules import timeline as rules_timeline
from harness.scenario.rules.timeline import MarkerKind
from harness.scenario.topology import Writer

Path_ = Writer  # which pipeline owned (or wrote) an event


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventFinding(_Model):
    """One event a check flagged, with where and when it happened (Jepsen-style evidence).

    The event is named by its identity, entity and time_fired; ``context_id`` is Home
    Assistant's cause (shared by every change one action made), "" where none is known."""

    entity_id: str
    time_fired: str  # ISO, as Home Assistant sent it
    context_id: str = ""
    phase: str  # the phase in force at time_fired
    path: str  # "legacy" / "new": the pipeline that owned it; or "shadow"
    detail: str = ""  # what is wrong: "stored 2 times", "state 'on' stored as 'True'", ...

    @property
    def event(self) -> str:
        """``sensor.x@2026-06-25T21:20:05.162552+00:00``: the event's identity in words."""
        return f"{self.entity_id}@{self.time_fired}"

    @property
    def context(self) -> str:
        """``context 01J...`` or "" : the cause, for a reader to find its siblings."""
        return f"context {self.context_id}" if self.context_id else ""


class Findings(_Model):
    lost: list[EventFinding] = Field(default_factory=list)
    duplicated: list[EventFinding] = Field(default_factory=list)
    unexpected: list[EventFinding] = Field(default_factory=list)
    inconsistent: list[EventFinding] = Field(default_factory=list)


class Counts(_Model):
    emitted: int = 0  # every event in the ledger
    expected: int = 0  # what production must hold: every event fired (DESIGN.md: zero loss)
    unsubscribed: int = 0  # fired while nobody listened: only history gives them back
    recovered: int = 0  # of those, in production (read back from Home Assistant's history)
    stored_production: int = 0  # distinct event keys (entity_id, time_fired) in production
    stored_shadow: int = 0
    lost: int = 0
    duplicated: int = 0
    unexpected: int = 0
    inconsistent: int = 0


class LatencyStats(_Model):
    """time_fired -> stored, in milliseconds: to InfluxDB's 204 for the points whose write was
    acknowledged (``acked`` of ``count``; pipeline/common/acks.py), to the writer's stamp for
    the rest. None: not known (a simulated run, or a run from before acks)."""

    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    acked: int | None = None


class SloResult(_Model):
    threshold: str  # as written: "p(95) < 100ms"
    metric: str
    target: float
    measured: float | None  # None: could not be measured (said in `note`)
    passed: bool
    note: str = ""


class PhaseSpan(_Model):
    name: str
    start_s: float  # seconds since the run started
    end_s: float


class Marker(_Model):
    """Something that happened at a moment: a fault, a traffic step, a rollback, a check."""

    t_s: float
    kind: MarkerKind
    label: str


def recorded(phases: Iterable[rules_timeline.PhaseSpan], markers: Iterable[rules_timeline.Marker]
             ) -> tuple[list[PhaseSpan], list[Marker]]:
    """A run's timeline (the runner's or the simulator's: one bookkeeping, ``rules.timeline``)
    as run.json has it."""
    return ([PhaseSpan(name=p.name, start_s=p.start_s, end_s=p.end_s) for p in phases],
            [Marker(t_s=m.t_s, kind=m.kind, label=m.label) for m in markers])


class Sample(_Model):
    """One second of the run, as the monitor scraped it."""

    t_s: float
    phase: str
    new_percent: int
    shadow: bool
    emitted: int  # cumulative, from the ledger
    stored: int  # cumulative, production points written (from the services' metrics)
    throughput_eps: float  # stored per second over the last second
    p95_ms: float | None  # over the last window
    error_rate: float  # over the last window
    queue_depth: int
    healthy: dict[str, bool] = Field(default_factory=dict)


class Rollback(_Model):
    triggered: bool = False
    trigger: str | None = None  # the trigger's name: error_rate, perf_drop, loss, ...
    at_s: float | None = None
    evidence: str = ""  # measured value against threshold, in words


class Drain(_Model):
    """The end of the run where the harness waits for the pipeline to store what it holds."""

    start_s: float  # seconds since the run started
    end_s: float
    unstored_start: int  # events fired to a subscriber that production did not hold yet
    unstored_end: int
    settled: bool  # False: its timeout passed first


class Verdict(_Model):
    passed: bool  # the scenario's expectation was met
    summary: str  # one paragraph a person reads first (also a failing pytest item's message)
    reasons: list[str] = Field(default_factory=list)  # each failed check, in words


class ServiceReport(_Model):
    name: str
    metrics: dict[str, float] = Field(default_factory=dict)  # final values of key counters
    log_excerpt: list[str] = Field(default_factory=list)  # last lines, and ERROR lines


class ChaosFault(_Model):
    """One fault of a chaos schedule, as the report lists it (times from the parallel run's
    start)."""

    id: int
    kind: str
    at_s: float
    for_s: float | None = None  # None: it ends by itself (a restart)
    phase: str = ""  # where the migration stands when it starts
    description: str


class ChaosReproduction(_Model):
    """How a chaos schedule fared when run again: it failed in ``failed`` of its ``runs`` runs
    ("reproduced 2 of 2"), stopped at the first that passed. Kept only when all failed."""

    failed: int
    runs: int
    reports: list[str] = Field(default_factory=list)  # each run's report.html, in order

    @property
    def reproduced(self) -> bool:
        return self.runs > 0 and self.failed == self.runs

    def __str__(self) -> str:
        return f"reproduced {self.failed} of {self.runs}"


class ChaosAttempt(_Model):
    """One candidate of the shrink: the schedule tried and whether it still failed in every
    try (kept)."""

    number: int
    change: str  # "remove #2, #4", "shorten #3: for 6.2 -> 1"
    faults: int
    failed: bool
    summary: str = ""  # the verdict of its last run (the one that decided)
    report: str = ""  # that run's report.html, relative to this run's directory
    reproduction: ChaosReproduction | None = None  # None: written before reruns existed

    @property
    def runs(self) -> int:
        return self.reproduction.runs if self.reproduction is not None else 1


class ChaosInfo(_Model):
    """What ``cutover chaos`` adds to the report of the run it ends on."""

    seed: int | None = None
    duration_s: float
    vocabulary: list[str] = Field(default_factory=list)
    replay: str = ""  # the command that runs this schedule again
    original: list[ChaosFault] = Field(default_factory=list)
    # None: nothing was shrunk (the verdict passed, or the failure did not reproduce)
    minimal: list[ChaosFault] | None = None
    failure: list[str] = Field(default_factory=list)  # the kind of failure the shrink kept
    attempts: list[ChaosAttempt] = Field(default_factory=list)
    max_shrinks: int = 0
    shrink_tries: int = 1  # runs a schedule must fail in, every one, to count as failing
    # the original's failing run and its reruns; the kept minimal schedule's runs
    original_reproduction: ChaosReproduction | None = None
    minimal_reproduction: ChaosReproduction | None = None
    exhausted: bool = False  # stopped at max_shrinks with simpler schedules left untried
    interrupted: bool = False  # stopped by Ctrl-C

    @property
    def shrink_runs(self) -> int:
        return sum(a.runs for a in self.attempts)


class RunResult(_Model):
    scenario: str
    description: str = ""
    scenario_file: str = ""
    scenario_text: str = ""  # the YAML itself, shown at the end of the report
    runtime: str  # "process" / "containers" / "simulated"
    # whose events were judged: the fake, or "live Home Assistant at URL" (never its token)
    home_assistant: str = "fake Home Assistant"
    simulated: bool = False
    started_at: str  # ISO
    duration_s: float
    time_scale: float
    verdict: Verdict
    expected: str  # "pass", or "rollback triggered by error_rate"
    counts: Counts
    findings: Findings
    findings_truncated: bool = False  # lists are capped (the counts are not)
    slos: list[SloResult] = Field(default_factory=list)
    latency: dict[str, LatencyStats] = Field(default_factory=dict)  # by path
    error_rate: float = 0.0
    availability: float = 1.0
    throughput_eps: float = 0.0
    phases: list[PhaseSpan] = Field(default_factory=list)
    markers: list[Marker] = Field(default_factory=list)
    timeline: list[Sample] = Field(default_factory=list)
    rollback: Rollback = Field(default_factory=Rollback)
    services: list[ServiceReport] = Field(default_factory=list)
    chaos: ChaosInfo | None = None  # set by `cutover chaos`: its schedules and shrink
    # stopped by Ctrl-C (SIGINT) or SIGTERM before its plan finished: every figure covers the
    # run until then, and the verdict is not a pass (nor a failure of the pipeline)
    interrupted: bool = False
    drain: Drain | None = None  # None: not recorded (no drain ran, or an older run.json)
