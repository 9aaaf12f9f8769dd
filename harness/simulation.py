"""From the SimPy model's outcome to the harness's own artefacts: a ``RunResult`` judged by the
same ``evaluate_slos`` / ``decide`` as a real run, its ``run.json`` and ``report.html`` (marked
simulated), and the Monte Carlo summary of many runs.

The model (``simulators/des``) knows nothing of the harness; this module is the one place that
knows both.

What differs from a real run's result, and why:

- counts are exact, but there are no event ids: ``findings.lost`` holds one synthetic row per
  cause of loss (id ``(simulated)``, "N event(s) <cause>" in place of the entity, the cause as
  detail);
  the other findings lists are empty (the model neither duplicates nor invents events);
- latency per path is the model's (calibrated unloaded latency plus the waiting it computed);
  its ``max`` is the quantile 1 - 1/(2N), the expected largest of N events;
- services carry the model's final counters and no logs.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from harness.checks.accounting import Accounting
from harness.report import render_index, render_run
from harness.results import (
    Counts,
    EventFinding,
    Findings,
    LatencyStats,
    Marker,
    Rollback,
    RunResult,
    Sample,
    ServiceReport,
    recorded,
)
from harness.runner.verdict import RunFigures, decide, evaluate_slos, expectation_text
from harness.scenario.model import Scenario
from simulators.des.calibration import Calibration
from simulators.des.cluster import ClusterSpec
from simulators.des.model import SimOptions, simulate
from simulators.des.montecarlo import MonteCarlo, run_many
from simulators.des.outcome import Outcome
from simulators.des.params import ModelParams, Reliability

__all__ = ["SimulationSetup", "monte_carlo", "plan_seconds", "result_of", "simulate_scenario",
           "time_scale_for", "write_result"]


def plan_seconds(scenario: Scenario) -> float:
    """The plan's own length at time scale 1: its holds and traffic steps' holds (the
    rollback steps and start-up waits are not part of the plan's clock)."""
    total = 0.0
    for phase in scenario.phases:
        for step in phase.steps:
            if step.kind == "hold":
                total += step.duration
            elif step.kind == "traffic":
                total += step.hold * len(step.steps)
    return total


def time_scale_for(scenario: Scenario, *, time_scale: float | None,
                   duration: float | None) -> float:
    """The simulation's time scale: given, or stretching the plan to ``duration``, or 1 (the
    plan as written)."""
    if duration is not None:
        plan = plan_seconds(scenario)
        if plan <= 0:
            raise ValueError(f"scenario {scenario.name!r} has no hold or traffic step to "
                             "stretch; --duration needs a plan with holds (use --time-scale)")
        return duration / plan
    return 1.0 if time_scale is None else time_scale


@dataclass
class SimulationSetup:
    """Everything ``cutover simulate`` decides before running the model."""

    scenario: Scenario
    source: Path | None
    seed: int = 1
    time_scale: float = 1.0
    load_scale: float = 1.0
    calibration: Calibration | None = None
    calibration_file: Path | None = None
    reliability: dict[str, Reliability] = field(default_factory=dict)

    def options(self) -> SimOptions:
        params = ModelParams()
        opts = SimOptions(seed=self.seed, time_scale=self.time_scale, load_scale=self.load_scale)
        if self.calibration is not None:
            params = self.calibration.apply(params)
            opts.latency = {**opts.latency, **self.calibration.dists()}
        if self.reliability:
            params = params.with_(reliability={**params.reliability, **self.reliability})
        opts.params = params
        return opts

    def describe(self) -> str:
        cal = f"calibration {self.calibration_file}" if self.calibration_file else \
            "built-in calibration"
        rel = "; random failures " + ", ".join(
            f"{k} MTBF {v.mtbf_s:g} s MTTR {v.mttr_s:g} s"
            for k, v in self.options().params.reliability.items()) \
            if self.options().params.reliability else ""
        return (f"simulated: seed {self.seed}, time scale {self.time_scale:g}, load x"
                f"{self.load_scale:g}, {cal}{rel}")


def _findings(outcome: Outcome) -> Findings:
    lost = [EventFinding(entity_id=f"{n:,} event(s) {cause}",
                         time_fired="", phase="(whole run)",
                         path="legacy" if "legacy" in cause else "new", detail=cause)
            for cause, n in sorted(outcome.lost_by_cause.items(), key=lambda kv: -kv[1]) if n]
    return Findings(lost=lost)


def _latency(outcome: Outcome) -> dict[str, LatencyStats]:
    return {path: LatencyStats(count=f.count, p50_ms=f.p50_s * 1000, p95_ms=f.p95_s * 1000,
                               p99_ms=f.p99_s * 1000, max_ms=f.max_s * 1000)
            for path, f in outcome.latency.items()}


def result_of(outcome: Outcome, setup: SimulationSetup) -> RunResult:
    """Judge ``outcome`` as a real run is judged and return its RunResult."""
    scenario = setup.scenario
    counts = Counts(**outcome.counts)
    findings = _findings(outcome)
    latency = _latency(outcome)
    acc = Accounting(counts, findings, latency, False)
    figures = RunFigures(error_rate=outcome.error_rate, availability=outcome.availability,
                         throughput_eps=outcome.throughput_eps, perf_drop=outcome.perf_drop)
    slos = evaluate_slos(scenario, acc, figures)
    rb = outcome.rollback
    rollback = Rollback(triggered=rb.triggered, trigger=rb.trigger, at_s=rb.at_s,
                        evidence=rb.evidence)
    verdict = decide(scenario, acc, slos, rollback, outcome.aborted)
    phases, recorded_markers = recorded(outcome.phases, outcome.markers)
    markers = [Marker(t_s=0.0, kind="note", label=setup.describe()), *recorded_markers]
    for note in outcome.not_modelled:
        markers.append(Marker(t_s=0.0, kind="note", label=f"not modelled: {note}"))
    source = setup.source
    return RunResult(
        scenario=scenario.name, description=scenario.description,
        scenario_file=str(source or ""),
        scenario_text=source.read_text(encoding="utf-8") if source and source.exists() else "",
        runtime="simulated", simulated=True, started_at=datetime.now(UTC).isoformat(),
        duration_s=outcome.duration_s, time_scale=outcome.time_scale, verdict=verdict,
        expected=expectation_text(scenario), counts=counts, findings=findings,
        findings_truncated=False, slos=slos, latency=latency, error_rate=outcome.error_rate,
        availability=outcome.availability, throughput_eps=outcome.throughput_eps,
        phases=phases,
        markers=markers,
        timeline=[Sample(t_s=s.t_s, phase=s.phase, new_percent=s.new_percent, shadow=s.shadow,
                         emitted=s.emitted, stored=s.stored,
                         throughput_eps=s.throughput_eps, p95_ms=s.p95_ms,
                         error_rate=s.error_rate, queue_depth=s.queue_depth,
                         healthy=s.healthy) for s in outcome.samples],
        rollback=rollback,
        services=[ServiceReport(name=name, metrics={k: float(v) for k, v in m.items()},
                                log_excerpt=["(simulated: no logs)"])
                  for name, m in outcome.services.items()])


def _run_dir(report_dir: Path, name: str, suffix: str = "") -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = report_dir / f"{name}-sim{suffix}-{stamp}-{secrets.token_hex(2)}"
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def write_result(result: RunResult, run_dir: Path) -> Path:
    (run_dir / "run.json").write_bytes(orjson.dumps(result.model_dump(mode="json"),
                                                    option=orjson.OPT_INDENT_2))
    return render_run(result, run_dir)


def simulate_scenario(setup: SimulationSetup, report_dir: Path
                      ) -> tuple[RunResult, Path, Outcome]:
    """One simulated run: judged, with run.json and report.html in a new run directory."""
    outcome = simulate(setup.scenario, setup.options())
    result = result_of(outcome, setup)
    run_dir = _run_dir(report_dir, setup.scenario.name)
    write_result(result, run_dir)
    return result, run_dir, outcome


def _representative(mc: MonteCarlo) -> int:
    """The run whose (rollback trigger, any loss) is the most common outcome, and among those
    the one whose production p95 is closest to that group's median."""
    groups: dict[tuple[str | None, bool], list[int]] = {}
    for i, o in enumerate(mc.outcomes):
        groups.setdefault((o.rollback.trigger, o.lost > 0), []).append(i)
    members = max(groups.values(), key=len)

    def p95(i: int) -> float:
        lat = mc.outcomes[i].latency.get("production")
        return lat.p95_s if lat else math.inf

    ordered = sorted(members, key=p95)
    median = p95(ordered[len(ordered) // 2])
    return min(members, key=lambda i: abs(p95(i) - median))


def monte_carlo(setup: SimulationSetup, runs: int, report_dir: Path,
                progress: Callable[[int, Outcome], None] | None = None,
                cluster: ClusterSpec | None = None) -> tuple[MonteCarlo, Path, Path]:
    """``runs`` seeds, here or on a Dask cluster; writes montecarlo.json, the representative
    run's run.json and report.html (in ``seed-N/``), and index.html, into one directory.
    Returns the summary, that directory and the representative run's directory."""
    mc = run_many(setup.scenario, setup.options(), runs, progress, cluster)
    results = []
    for o in mc.outcomes:
        each = SimulationSetup(**{**setup.__dict__, "seed": o.seed})
        results.append(result_of(o, each))
    from simulators.des.montecarlo import Estimate

    mc.passed = Estimate(sum(1 for r in results if r.verdict.passed), len(results))
    out = _run_dir(report_dir, setup.scenario.name, f"-x{runs}")
    pick = _representative(mc)
    rep = results[pick]
    rep_dir = out / f"seed-{mc.outcomes[pick].seed}"
    rep_dir.mkdir(parents=True, exist_ok=True)
    write_result(rep, rep_dir)
    summary: dict[str, Any] = {
        "scenario": setup.scenario.name, "simulated": True, "describe": setup.describe(),
        "time_scale": setup.time_scale, "load_scale": setup.load_scale,
        "calibration": str(setup.calibration_file) if setup.calibration_file else None,
        # Where the runs ran: the only field that differs between one process and a cluster.
        "executed": {"workers": cluster.workers if cluster and not cluster.scheduler else 1,
                     "scheduler": cluster.scheduler if cluster else None},
        **mc.as_dict(),
        "representative": {"seed": mc.outcomes[pick].seed, "run_dir": rep_dir.name,
                           "rollback": rep.rollback.trigger, "lost": rep.counts.lost,
                           "verdict_passed": rep.verdict.passed},
        "per_run": [{"seed": o.seed, "rollback": o.rollback.trigger, "at_s": o.rollback.at_s,
                     "lost": o.lost, "passed": r.verdict.passed,
                     "p95_ms": round(o.latency["production"].p95_s * 1000, 3)
                     if "production" in o.latency else None,
                     "throughput_eps": round(o.throughput_eps, 3)}
                    for o, r in zip(mc.outcomes, results, strict=True)],
    }
    (out / "montecarlo.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    render_index([(rep, rep_dir)], out / "index.html")
    return mc, out, rep_dir
