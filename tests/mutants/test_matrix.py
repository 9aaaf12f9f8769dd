"""The mutation matrix's arithmetic and reports, on fabricated runs (no scenario runs).

The cover must be the smallest, not merely a cover: greedy set cover takes the scenario that
catches the most first and can end one scenario over (here it would take three where two do).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.results import Counts, Findings, Rollback, RunResult, SloResult, Verdict

from . import MUTANTS
from .matrix import Cell, judge, main, smallest_cover, write_reports

#: "wide" catches the most, so greedy takes it first and still needs "left" and "right";
#: "left" and "right" alone catch everything.
CATCHES = {"wide": {1, 2, 3, 4}, "left": {1, 2, 5}, "right": {3, 4, 6}, "none": set()}


def test_cover_is_the_smallest_not_the_greedy_one() -> None:
    cover = smallest_cover(CATCHES, [1, 2, 3, 4, 5, 6, 7])
    assert (cover.scenarios, cover.method) == (["left", "right"], "exact")
    assert cover.covered == [1, 2, 3, 4, 5, 6]
    assert cover.uncaught == [7]  # in the matrix, caught by no scenario
    assert cover.alternatives == 1
    # what greedy gives on the same sets, beyond the exact search's limit: a cover, one too big
    greedy = smallest_cover(CATCHES, [1, 2, 3, 4, 5, 6, 7], exact_limit=2)
    assert (sorted(greedy.scenarios), greedy.method) == (["left", "right", "wide"], "greedy")


def test_cover_ties_go_to_the_cheaper_set_and_nothing_caught_is_an_empty_cover() -> None:
    catches = {"a": {1}, "b": {1}, "c": {2}}
    cover = smallest_cover(catches, [1, 2], cost={"a": 90.0, "b": 30.0, "c": 10.0})
    assert (cover.scenarios, cover.alternatives) == (["b", "c"], 2)
    nothing = smallest_cover({"a": set()}, [1, 2])
    assert (nothing.scenarios, nothing.uncaught) == ([], [1, 2])


def _result(*, passed: bool, reasons: tuple[str, ...] = (), slos: tuple[SloResult, ...] = (),
            rollback: Rollback | None = None, **counts: int) -> RunResult:
    return RunResult(scenario="s", runtime="process", started_at="2026-01-01T00:00:00+00:00",
                     duration_s=60.0, time_scale=1.0, expected="pass",
                     verdict=Verdict(passed=passed, summary="FAILED" if not passed else "PASSED",
                                     reasons=list(reasons)),
                     counts=Counts(**counts), findings=Findings(), slos=list(slos),
                     rollback=rollback or Rollback())


def test_judge_names_the_evidence_and_its_margin() -> None:
    lost = judge(_result(passed=False, reasons=["37 event(s) lost: ..."], lost=30, duplicated=7))
    assert (lost["caught"], lost["by"], lost["margin"], lost["weak"]) == \
        (True, "lost 30, duplicated 7", 37.0, False)
    one = judge(_result(passed=False, reasons=["1 event(s) lost: ..."], lost=1,
                        rollback=Rollback(triggered=True, trigger="loss", evidence="1 lost")))
    assert (one["by"], one["weak"], one["rollback"]) == ("lost 1; rollback by loss", True, "loss")
    p95 = SloResult(threshold="p(95) < 100ms", metric="p95", target=0.1, measured=0.4125,
                    passed=False)
    slow = judge(_result(passed=False, reasons=("SLO p(95) < 100ms not met",), slos=(p95,)))
    assert slow["by"] == "SLO p(95) < 100ms" and slow["margin"] == pytest.approx(3.125)
    assert "312.5 ms past" in str(slow["margin_text"]) and not slow["weak"]
    avail = SloResult(threshold="availability >= 99%", metric="availability", target=0.99,
                      measured=0.9895, passed=False)
    near = judge(_result(passed=False, reasons=("SLO availability >= 99% not met",), slos=(avail,)))
    assert near["margin"] == pytest.approx(0.05) and near["weak"]  # 5% of the 1% it allows
    fired = judge(_result(passed=False, reasons=["rollback triggered by perf_drop: 31%"],
                          rollback=Rollback(triggered=True, trigger="perf_drop",
                                            evidence="perf_drop 31% > 20%")))
    assert (fired["by"], fired["margin_text"]) == ("rollback by perf_drop", "perf_drop 31% > 20%")
    missed = judge(_result(passed=True))
    assert (missed["caught"], missed["by"], missed["margin"]) == (False, "", None)


def test_a_run_that_could_not_complete_is_an_error_not_a_catch() -> None:
    broke = judge(_result(passed=False, reasons=(
        "the run could not complete: could not read InfluxDB: boom",
        "SLO availability >= 90% not met: measured 88.9%")))
    assert (broke["caught"], broke["error"]) == \
        (False, "the run could not complete: could not read InfluxDB: boom")
    cell = Cell(2, MUTANTS[2][0], "fleet_churn", True, **broke)  # type: ignore[arg-type]
    assert cell.label == "error"


def _cells() -> list[Cell]:
    def cell(m: int, s: str, caught: bool, by: str = "", margin: float | None = None,
             weak: bool = False) -> Cell:
        return Cell(m, MUTANTS[m][0], s, s == MUTANTS[m][2], caught, by=by, margin=margin,
                    margin_text=f"{margin:g} event(s)" if margin else "", weak=weak,
                    reason=f"{margin:g} event(s) lost: x" if margin else "", seconds=60.0,
                    report=f"/r/{s}-{m}/report.html")
    return [cell(2, "fleet_churn", True, "lost 37", 37), cell(2, "phase2_parallel", False),
            cell(3, "fleet_churn", True, "lost 1", 1, weak=True),
            cell(3, "phase2_parallel", True, "lost 5", 5),
            cell(14, "fleet_churn", False), cell(14, "phase2_parallel", False)]


def test_reports_write_the_table_the_cover_and_the_figures(tmp_path: Path) -> None:
    figs = write_reports(_cells(), [2, 3, 14], ["fleet_churn", "phase2_parallel"], tmp_path, 360.0)
    data = json.loads((tmp_path / "matrix.json").read_text())
    assert data["complete"] and data["figures"] == figs
    assert (figs["cells"], figs["caught"], figs["weak"], figs["missed"]) == (6, 3, 1, 3)
    assert figs["cover"] == ["fleet_churn"] and figs["uncaught"] == [14]
    assert (figs["own_caught"], figs["own_run"], figs["own_not_caught"]) == (2, 3, [14])
    assert data["cells"][0]["by"] == "lost 37" and data["mutants"]["14"]["own_scenario"] == \
        "fleet_churn"
    md = (tmp_path / "matrix.md").read_text()
    assert "| scenario | m02 | m03 | m14 |" in md
    assert "| fleet_churn | caught: lost 37 * | caught (weak): lost 1 * | missed * |" in md
    assert "| phase2_parallel | missed | caught: lost 5 | missed |" in md
    assert "fleet_churn (exact)" in md and "Caught by no scenario: 14 (m14_writer_stops)" in md


def test_exit_status_is_whether_every_mutant_was_caught_by_its_own_scenario(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from . import matrix

    ran: list[tuple[int, str]] = []

    def fake_run(mutant: int, scenario: str, report_dir: Path) -> Cell:
        ran.append((mutant, scenario))
        by = {c.mutant: c for c in _cells() if c.scenario == scenario}
        return by[mutant]

    monkeypatch.setattr(matrix, "run_cell", fake_run)
    assert main(["--mutant", "2", "--mutant", "3", "--scenario", "phase2_parallel",
                 "--scenario", "fleet_churn", "--report-dir", str(tmp_path)]) == 0
    assert ran == [(2, "fleet_churn"), (2, "phase2_parallel"),  # own scenario first
                   (3, "fleet_churn"), (3, "phase2_parallel")]
    out = capsys.readouterr().out.splitlines()
    assert json.loads(out[-1])["cover"] == ["fleet_churn"]
    assert main(["--mutant", "14", "--scenario", "fleet_churn", "--report-dir",
                 str(tmp_path)]) == 1
