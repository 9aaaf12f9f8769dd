"""`cutover chaos` end to end: the command's input handling, the orchestration of run, shrink
and report (against a fake runner), and real runs (slow): on processes one that survives its
faults and one against a storage mutant that must shrink to the fault exposing it; on
containers one whose faults are the engine's own (restart, pause) and a cut hop."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from harness.chaos import run as chaos_run
from harness.chaos.run import failure_kinds, run_chaos
from harness.chaos.schedule import FAULT, Schedule, ScheduledFault, draw_schedule
from harness.report import render_run
from harness.results import (
    ChaosAttempt,
    ChaosFault,
    ChaosInfo,
    Counts,
    Findings,
    RunResult,
    SloResult,
    Verdict,
)
from harness.runtime.influxd import find_influxd
from tests.containers.test_runtime import needs_engine

ROOT = Path(__file__).resolve().parents[2]
BROKEN_STORAGE = {"storage": "tests.chaos.broken_storage"}


def cutover(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def result_of(*, lost: int = 0, reasons: list[str] | None = None) -> RunResult:
    passed = not lost and not reasons
    return RunResult(
        scenario="chaos-1", runtime="process", started_at="2026-01-01T00:00:00+00:00",
        duration_s=30.0, time_scale=1.0, expected="SLOs met, no rollback",
        verdict=Verdict(passed=passed, summary="PASSED" if passed else "FAILED: lost",
                        reasons=(reasons or []) + ([f"{lost} event(s) lost"] if lost else [])),
        counts=Counts(emitted=100, expected=100, stored_production=100 - lost, lost=lost),
        findings=Findings(),
        slos=[SloResult(threshold="loss == 0", metric="loss", target=0, measured=lost,
                        passed=not lost)])


# -- the command's input ----------------------------------------------------------------------


def test_unknown_kind_exits_2_with_one_line():
    r = cutover("chaos", "--vocabulary", "kill,melt", "--dry-run")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "melt" in lines[0] and "influxdb_outage" in lines[0]


def test_dry_run_prints_the_seeds_schedule_as_json():
    r = cutover("chaos", "--seed", "3", "--duration", "30", "--runtime", "process", "--dry-run")
    assert r.returncode == 0, r.stderr
    printed = Schedule.model_validate_json(r.stdout)
    assert printed == draw_schedule(3, 30, runtime="process")
    assert "seed 3" in r.stderr and "--seed 3 --duration 30" in r.stderr
    for f in printed.faults:  # the table names every fault
        assert f.fault.kind in r.stderr


def test_dry_run_without_a_seed_draws_one_and_says_which():
    r = cutover("chaos", "--duration", "30", "--dry-run")
    assert r.returncode == 0, r.stderr
    seed = json.loads(r.stdout)["seed"]
    assert f"seed {seed} " in r.stderr


def test_replay_errors(tmp_path):
    r = cutover("chaos", "--replay", str(tmp_path / "nope.json"))
    assert r.returncode == 2 and "no such schedule file" in r.stderr
    path = draw_schedule(1, 30).save(tmp_path / "s.json")
    r = cutover("chaos", "--replay", str(path), "--seed", "4")
    assert r.returncode == 2 and "leave out --seed" in r.stderr
    r = cutover("chaos", "--replay", str(path), "--runtime", "process", "--dry-run")
    assert r.returncode == 0 and Schedule.model_validate_json(r.stdout) == Schedule.load(path)


def test_shrink_tries_below_one_is_refused():
    r = cutover("chaos", "--shrink-tries", "0", "--dry-run")
    assert r.returncode == 2
    assert r.stderr.strip() == ("cutover chaos: Invalid value for '--shrink-tries': 0 is not in "
                                "the range x>=1.")


def test_short_duration_is_refused():
    r = cutover("chaos", "--duration", "5", "--dry-run")
    assert r.returncode == 2 and "--duration" in r.stderr


# -- the orchestration, against a fake runner ------------------------------------------------


def test_failure_kinds():
    assert failure_kinds(result_of()) == set()
    assert failure_kinds(result_of(lost=3)) == {"lost"}
    assert failure_kinds(result_of(reasons=["the run could not complete: boom"])) == {"aborted"}


async def test_run_shrink_and_report_with_a_fake_runner(tmp_path, monkeypatch):
    """Fails iff an InfluxDB outage is in the scenario: the report ends on the run of the
    outage alone, with both schedules and every shrink step linked."""
    calls = []

    async def fake_run_scenario(scenario, *, source, runtime, time_scale, report_dir, console,
                                service_modules, fault_proxy, pipeline=None):
        calls.append(scenario)
        faults = [s.fault for p in scenario.phases for s in p.steps if hasattr(s, "fault")]
        lost = 7 if any(f.kind == "influxdb_outage" for f in faults) else 0
        result = result_of(lost=lost)
        run_dir = report_dir / f"{scenario.name}-{len(calls)}"
        run_dir.mkdir(parents=True)
        (run_dir / "run.json").write_bytes(orjson.dumps(result.model_dump(mode="json")))
        render_run(result, run_dir)
        assert source.read_text().startswith("name: chaos-")
        assert fault_proxy is True and service_modules == BROKEN_STORAGE
        return result, run_dir

    monkeypatch.setattr(chaos_run, "run_scenario", fake_run_scenario)
    schedule = Schedule(seed=5, duration_s=40, faults=[
        ScheduledFault(id=1, fault=FAULT.validate_python(
            {"kind": "weather_slow", "delay": 2, "at": 3, "for": 6})),
        ScheduledFault(id=2, fault=FAULT.validate_python(
            {"kind": "kill", "service": "storage", "at": 12, "for": 4})),
        ScheduledFault(id=3, fault=FAULT.validate_python(
            {"kind": "influxdb_outage", "at": 27, "for": 5.5})),
    ])
    outcome = await run_chaos(schedule, runtime="process", report_dir=tmp_path,
                              max_shrinks=10, service_modules=BROKEN_STORAGE)
    assert not outcome.passed
    minimal = outcome.shrink.minimal
    assert [(f.id, f.fault.kind, f.for_) for f in minimal.faults] == [(3, "influxdb_outage", 1.0)]
    # the original, its rerun (two tries by default), then every candidate's runs
    assert len(calls) == 1 + 1 + outcome.shrink.runs
    assert outcome.shrink.runs == 7  # three candidates kept (2 runs each), one passed (1)
    assert (tmp_path / outcome.chaos_dir.name / "original-2").is_dir()
    # the final report is the minimal run's, with the chaos section in run.json and the page
    assert outcome.run_dir == sorted(tmp_path.glob("chaos-5-*/shrink-*/*"))[-1]
    saved = RunResult.model_validate_json((outcome.run_dir / "run.json").read_text())
    assert saved.chaos is not None
    assert [f.kind for f in saved.chaos.minimal] == ["influxdb_outage"]
    assert len(saved.chaos.original) == 3 and saved.chaos.failure == ["lost"]
    assert saved.chaos.shrink_tries == 2
    assert [a.number for a in saved.chaos.attempts] == [1, 2, 3, 4]
    assert [(a.reproduction.failed, a.reproduction.runs) for a in saved.chaos.attempts] == [
        (2, 2), (2, 2), (0, 1), (2, 2)]
    assert saved.chaos.shrink_runs == 7
    orig, mini = saved.chaos.original_reproduction, saved.chaos.minimal_reproduction
    assert (orig.failed, orig.runs, mini.failed, mini.runs) == (2, 2, 2, 2)
    for a in saved.chaos.attempts:
        assert (outcome.run_dir / a.report).resolve().exists()
        assert a.report == a.reproduction.reports[-1]
        for link in a.reproduction.reports:
            assert (outcome.run_dir / link).resolve().exists()
    assert [Path(link).parts[-3] for link in orig.reports] == ["original", "original-2"]
    assert mini.reports[-1] == "report.html"  # the minimal's last run is this report
    page = outcome.report.read_text()
    assert "Minimal failing schedule" in page and "Shrink steps" in page
    assert "remove #1" in page and "minimal.json" in page
    assert "The original schedule reproduced 2 of 2" in page
    assert "the minimal one reproduced 2 of 2" in page
    assert Schedule.load(outcome.chaos_dir / "minimal.json") == minimal
    assert Schedule.load(outcome.chaos_dir / "schedule.json") == schedule
    assert (outcome.chaos_dir / "index.html").exists()


def flaky_runner(calls: list[str], fails_on: dict[str, list[bool]]):
    """A fake `run_scenario`: a run loses events as ``fails_on[label]`` says for the n-th run of
    that directory label ("original", "original-2", "shrink-01", ...), else when an InfluxDB
    outage is in the scenario (the defect)."""

    async def fake_run_scenario(scenario, *, source, runtime, time_scale, report_dir, console,
                                service_modules, fault_proxy, pipeline=None):
        label = report_dir.name
        calls.append(label)
        faults = [s.fault for p in scenario.phases for s in p.steps if hasattr(s, "fault")]
        failed = fails_on.get(label, any(f.kind == "influxdb_outage" for f in faults))
        result = result_of(lost=7 if failed else 0)
        run_dir = report_dir / f"{scenario.name}-{len(calls)}"
        run_dir.mkdir(parents=True)
        render_run(result, run_dir)
        return result, run_dir

    return fake_run_scenario


OUTAGE_AND_KILL = Schedule(seed=6, duration_s=40, faults=[
    ScheduledFault(id=1, fault=FAULT.validate_python(
        {"kind": "influxdb_outage", "at": 5, "for": 1})),
    ScheduledFault(id=2, fault=FAULT.validate_python(
        {"kind": "kill", "service": "storage", "at": 20, "for": 4})),
])


async def test_a_failure_that_does_not_reproduce_is_not_shrunk(tmp_path, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(chaos_run, "run_scenario",
                        flaky_runner(calls, {"original": True, "original-2": False}))
    schedule = OUTAGE_AND_KILL.model_copy(update={"faults": OUTAGE_AND_KILL.faults[:1]})
    outcome = await run_chaos(schedule, runtime="process", report_dir=tmp_path)
    assert not outcome.passed  # a loss seen once is still a loss
    assert calls == ["original", "original-2"]  # and nothing shrunk
    assert not outcome.shrink.reproduced and outcome.shrink.attempts == []
    assert not (outcome.chaos_dir / "minimal.json").exists()
    # the report is the original's failing run, and says loudly what happened
    assert outcome.run_dir.parent.name == "original"
    saved = RunResult.model_validate_json((outcome.run_dir / "run.json").read_text())
    assert saved.counts.lost == 7 and saved.chaos.minimal is None
    rep = saved.chaos.original_reproduction
    assert (rep.failed, rep.runs) == (1, 2) and str(rep) == "reproduced 1 of 2"
    assert rep.reports[0] == "report.html"
    assert (outcome.run_dir / rep.reports[1]).resolve().parent.parent.name == "original-2"
    page = outcome.report.read_text()
    assert "The failure did not reproduce" in page and "reproduced 1 of 2" in page


async def test_a_candidate_that_fails_once_is_not_kept(tmp_path, monkeypatch):
    # Removing the outage (shrink-01) leaves the kill alone, which does not fail; but its first
    # run loses events by timing. Two tries reject it and end on the outage, as they should.
    calls: list[str] = []
    monkeypatch.setattr(chaos_run, "run_scenario", flaky_runner(calls, {"shrink-01": True}))
    outcome = await run_chaos(OUTAGE_AND_KILL, runtime="process", report_dir=tmp_path / "a",
                              shrink_tries=2)
    assert calls[:5] == ["original", "original-2", "shrink-01", "shrink-02", "shrink-03"]
    saved = outcome.result.chaos
    assert [(a.change, a.failed, a.reproduction.failed, a.reproduction.runs)
            for a in saved.attempts[:2]] == [("remove #1", False, 1, 2),
                                             ("remove #2", True, 2, 2)]
    assert [f.kind for f in saved.minimal] == ["influxdb_outage"]
    page = outcome.report.read_text()
    assert "did not reproduce: not kept" in page and "reproduced 1 of 2" in page

    # One try, the old behaviour: the same timing keeps the kill alone, which never fails
    # again, and the "minimal failing schedule" is one that passes.
    calls.clear()
    once = await run_chaos(OUTAGE_AND_KILL, runtime="process", report_dir=tmp_path / "b",
                           shrink_tries=1)
    assert calls[:2] == ["original", "shrink-01"]  # no rerun of the original either
    assert once.shrink.attempts[0].change == "remove #1" and once.shrink.attempts[0].failed
    assert [f.kind for f in once.result.chaos.minimal] == ["kill"]
    assert once.result.chaos.original_reproduction.runs == 1


async def test_a_passing_run_is_reported_without_a_shrink(tmp_path, monkeypatch):
    async def fake_run_scenario(scenario, *, report_dir, **_):
        run_dir = report_dir / "run"
        run_dir.mkdir(parents=True)
        return result_of(), run_dir

    monkeypatch.setattr(chaos_run, "run_scenario", fake_run_scenario)
    schedule = draw_schedule(9, 30)
    outcome = await run_chaos(schedule, runtime="process", report_dir=tmp_path)
    assert outcome.passed and outcome.shrink is None
    assert outcome.result.chaos.minimal is None
    assert len(outcome.result.chaos.original) == len(schedule.faults)
    assert "Chaos schedule" in outcome.report.read_text()


def test_the_chaos_section_is_escaped(tmp_path):
    evil = "<script>alert(1)</script>"
    info = ChaosInfo(seed=1, duration_s=30, vocabulary=["kill"], replay=f"cutover {evil}",
                     original=[ChaosFault(id=1, kind="kill", at_s=1, for_s=2, phase=evil,
                                          description=evil)],
                     minimal=[], attempts=[ChaosAttempt(number=1, change=evil, faults=0,
                                                        failed=True, summary=evil)])
    page = render_run(result_of(lost=1).model_copy(update={"chaos": info}), tmp_path)
    text = page.read_text()
    assert evil not in text and "&lt;script&gt;" in text
    assert "the run fails without any" in text


# -- real runs (slow) ---------------------------------------------------------------------------

needs_influxd = pytest.mark.skipif(find_influxd() is None, reason="influxd is not installed")


@pytest.mark.slow
@needs_influxd
def test_a_short_chaos_run_survives_its_faults(tmp_path):
    r = cutover("chaos", "--seed", "12", "--duration", "30", "--runtime", "process",
                "--report-dir", str(tmp_path), timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "passed: " in r.stderr and "fault(s) survived" in r.stderr
    (run_json,) = tmp_path.glob("chaos-12-*/original/*/run.json")
    result = RunResult.model_validate_json(run_json.read_text())
    assert result.verdict.passed and result.counts.lost == 0
    assert result.chaos is not None and result.chaos.minimal is None
    assert len(result.chaos.original) == len(draw_schedule(12, 30).faults) >= 2
    # every fault was injected, and every one with a `for` healed
    injected = [m.label for m in result.markers if m.kind == "fault"]
    assert not any(label.startswith("FAILED") for label in injected), injected
    assert sum(label.startswith("healed") for label in injected) == sum(
        f.for_s is not None for f in result.chaos.original)
    assert "Chaos schedule" in (run_json.parent / "report.html").read_text()


@pytest.mark.slow
@needs_influxd
async def test_a_storage_that_drops_on_write_errors_shrinks_to_the_outage(tmp_path):
    # seed 2 draws a latency on legacy's InfluxDB hop and an InfluxDB outage after legacy stops
    schedule = draw_schedule(2, 24, faults=2, vocabulary="influxdb_outage,weather_slow,latency")
    kinds = [f.fault.kind for f in schedule.faults]
    assert kinds == ["latency", "influxdb_outage"]
    # One try each (the fake-runner tests above cover retries; each real run costs ~30 s of
    # CI): remove #1 kept, remove #2 passes, shorten kept
    outcome = await run_chaos(schedule, runtime="process", report_dir=tmp_path, max_shrinks=5,
                              shrink_tries=1, service_modules=BROKEN_STORAGE)
    assert not outcome.passed
    shrunk = outcome.shrink
    assert shrunk is not None and not shrunk.exhausted and shrunk.runs == 3
    assert str(shrunk.original_reproduction) == "reproduced 1 of 1"
    assert str(shrunk.minimal_reproduction) == "reproduced 1 of 1"
    (fault,) = (f.fault for f in shrunk.minimal.faults)
    assert fault.kind == "influxdb_outage" and fault.for_ == 1.0
    # the final report is the minimal schedule's run: it lost events, and it says why
    result = outcome.result
    assert result.counts.lost > 0 and not result.verdict.passed
    assert [f.kind for f in result.chaos.minimal] == ["influxdb_outage"]
    assert [f.kind for f in result.chaos.original] == kinds
    assert [a.change for a in result.chaos.attempts][:2] == ["remove #1", "remove #2"]
    assert [a.failed for a in result.chaos.attempts][:2] == [True, False]
    page = outcome.report.read_text()
    assert "Minimal failing schedule" in page and "influxdb_outage" in page
    saved = RunResult.model_validate_json((outcome.run_dir / "run.json").read_text())
    assert saved.chaos == result.chaos


@pytest.mark.slow
@needs_engine
@pytest.mark.timeout(900)  # on a fresh machine this run may build the images first
def test_a_chaos_run_on_containers_survives_the_engines_faults(tmp_path):
    # seed 7 draws a restart and a pause of enrichment (docker restart/pause) and its weather
    # hop cut by the fault proxy's container
    schedule = draw_schedule(7, 30, runtime="containers")
    assert [f.fault.kind for f in schedule.faults] == ["restart", "down", "pause"]
    r = cutover("chaos", "--seed", "7", "--duration", "30", "--runtime", "containers",
                "--report-dir", str(tmp_path), timeout=840)
    assert r.returncode == 0, r.stderr[-3000:]
    (run_json,) = tmp_path.glob("chaos-7-*/original/*/run.json")
    result = RunResult.model_validate_json(run_json.read_text())
    assert result.runtime == "containers"
    assert result.verdict.passed and result.counts.lost == 0 and result.counts.duplicated == 0
    injected = [m.label for m in result.markers if m.kind == "fault"]
    assert not any(label.startswith("FAILED") for label in injected), injected
    assert any(label.startswith("pause enrichment") for label in injected), injected
