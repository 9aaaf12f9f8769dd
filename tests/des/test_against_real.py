"""The model checked against reality: real runs of six scenarios on the process runtime (each
at its file's time scale), a calibration fitted from one of them (phase3_traffic_switch), and
the other five simulated with that calibration at the same time scale.

For phase1_foundation, phase2_parallel and rollback_on_latency every figure is asserted:

- throughput within 10% of the real run's,
- production p95 within 50% (`P95_TOLERANCE`: both figures are noisy),
- the same trigger decision (no rollback, or a rollback by the same trigger),
- the same loss (the same number of events lost: none, in these scenarios).

For load_baseline and rollback_on_error_rate the decision, the loss and the throughput are
asserted and p95 is shown, not asserted, because on a shared two-core machine neither real
figure is a property of the pipeline alone:

- load_baseline's production is 85% new-pipeline events, so its p95 sits in the new path's
  tail, which is where CPU contention from other processes shows: two real runs of
  phase3_traffic_switch on this machine measured the new path's p95 at 7.7 ms and 62.8 ms;
- rollback_on_error_rate's storage crash delays the new pipeline's events until the rollback
  takes effect; whether they make 4% or 6% of production (so whether p95 is legacy's 25 ms or
  the outage's seconds) depends on how soon the breaker opens against the monitor's tick,
  which varies from run to run in reality as in the model (its seeds put p95 anywhere
  between 26 ms and 900 ms).

The simulated figures are the median (throughput, p95) and the most common decision and loss
over five seeds: one seed is one possible run, and so is the real one.
"""

from __future__ import annotations

import asyncio
import io
import statistics
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from harness.results import RunResult
from harness.runner.run import run_scenario
from harness.runtime.influxd import find_influxd
from harness.scenario import load_scenario
from simulators.des.calibration import fit_run_dir
from simulators.des.model import SimOptions, simulate
from simulators.des.params import ModelParams

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SOURCE = "phase3_traffic_switch"
COMPARED = ("phase1_foundation", "phase2_parallel", "rollback_on_latency")
DECISION_ONLY = ("load_baseline", "rollback_on_error_rate")
SEEDS = range(1, 6)
#: How far the simulated p95 may be from one real run's. Both figures are noisy: five real runs
#: of phase1_foundation on this machine (about 400 events each) gave a legacy p95 of 27.5, 28.0,
#: 28.4, 32.9 and 35.4 ms, about 13% either side of the middle, and the calibration comes from
#: another single real run with the same noise. 25% failed on that spread alone. 35% failed
#: too: in one idle session phase1_foundation measured 45.3 ms and phase2_parallel 30.2 ms, the
#: same legacy path at the same 50/s, 50% apart, against a simulated 42.8 for both. What 50%
#: still catches, measured on phase2_parallel against a real 41.2 ms (the model as calibrated:
#: -20%): the calibrated latency scaled by 2 gives +60%, by 1/3 (no flush buffer) -74%. A model
#: 2x off is caught by a margin of 10 points only: a tighter check needs more than one real run.
P95_TOLERANCE = 0.50


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[RunResult, Path]]:
    if find_influxd() is None:
        pytest.skip("influxd is not installed (make system-deps)")
    report_dir = tmp_path_factory.mktemp("real")
    console = Console(file=io.StringIO(), width=120)
    runs = {}
    for name in (SOURCE, *COMPARED, *DECISION_ONLY):
        path = SCENARIOS / f"{name}.yaml"
        result, run_dir = asyncio.run(run_scenario(
            load_scenario(path), source=path, runtime="process", time_scale=None,
            report_dir=report_dir, console=console))
        runs[name] = (result, run_dir)
    return runs


def _decision(trigger: str | None) -> str:
    return f"rollback by {trigger}" if trigger else "no rollback"


def test_simulation_matches_real_runs(real_runs: dict[str, tuple[RunResult, Path]]) -> None:
    cal = fit_run_dir(real_runs[SOURCE][1])
    base = SimOptions(params=cal.apply(ModelParams()), latency=cal.dists())
    rows, problems = [], []
    for name in (*COMPARED, *DECISION_ONLY):
        real, _ = real_runs[name]
        scenario = load_scenario(SCENARIOS / f"{name}.yaml")
        outs = [simulate(scenario, replace(base, seed=s, time_scale=scenario.time_scale))
                for s in SEEDS]
        thr = statistics.median(o.throughput_eps for o in outs)
        p95 = statistics.median(o.latency["production"].p95_s * 1000 for o in outs)
        decision = Counter(_decision(o.rollback.trigger) for o in outs).most_common(1)[0][0]
        lost = Counter(o.lost for o in outs).most_common(1)[0][0]
        real_p95 = real.latency["production"].p95_ms
        real_decision = _decision(real.rollback.trigger if real.rollback.triggered else None)
        d_thr = thr / real.throughput_eps - 1
        d_p95 = p95 / real_p95 - 1
        rows.append((name, real.throughput_eps, thr, d_thr, real_p95, p95, d_p95,
                     real_decision, decision, real.counts.lost, lost))
        if abs(d_thr) > 0.10:
            problems.append(f"{name}: throughput {thr:.2f}/s vs real {real.throughput_eps:.2f}/s")
        if name in COMPARED and abs(d_p95) > P95_TOLERANCE:
            problems.append(f"{name}: p95 {p95:.1f} ms vs real {real_p95:.1f} ms")
        if decision != real_decision:
            problems.append(f"{name}: {decision} vs real {real_decision}")
        if lost != real.counts.lost:
            problems.append(f"{name}: {lost} lost vs real {real.counts.lost}")
    header = (f"calibrated from {SOURCE} ({real_runs[SOURCE][1].name}); simulated: median of "
              f"{len(SEEDS)} seeds")
    lines = [header,
             f"{'scenario':<24} {'throughput real/sim':>22} {'p95 ms real/sim':>22} "
             f"{'trigger decision real / sim':<48} {'lost real/sim':>13}"]
    for (name, rt, st, dt, rp, sp, dp, rd, sd, rl, sl) in rows:
        lines.append(f"{name:<24} {rt:8.2f} / {st:6.2f} ({dt:+.1%}) {rp:7.1f} / {sp:7.1f} "
                     f"({dp:+.0%}){'' if name in COMPARED else '*'} {rd + ' / ' + sd:<48} "
                     f"{rl:>5} / {sl:<5}")
    lines.append("* p95 shown, not asserted (see the module docstring); the rest asserted")
    print("\n" + "\n".join(lines))
    assert not problems, "\n".join(lines + problems)
