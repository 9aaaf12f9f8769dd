"""``cutover simulate``: the same verdict and report as a real run, marked simulated; Monte
Carlo's table and files; bad input says what to write instead (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.commands.simulate import SimulateInputError, parse_load_scale, parse_reliability
from harness.report import load_run
from harness.scenario import load_scenario
from harness.simulation import plan_seconds, time_scale_for

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def cli(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_:
        main(args)
    return int(exit_.value.code or 0)


def test_a_simulated_run_writes_the_same_report_marked_simulated(tmp_path: Path) -> None:
    code = cli(["simulate", str(SCENARIOS / "rollback_on_latency.yaml"), "--time-scale",
                "0.02", "--report-dir", str(tmp_path)])
    assert code == 0
    (run_dir,) = tmp_path.iterdir()
    result = load_run(run_dir / "run.json")
    assert result.simulated and result.runtime == "simulated"
    assert result.verdict.passed and result.rollback.trigger == "perf_drop"
    assert result.counts.lost == 0 and result.counts.emitted > 500
    assert {"legacy", "new", "shadow", "production"} <= set(result.latency)
    assert result.timeline and result.phases[-1].name == "rollback"
    assert result.markers[0].label.startswith("simulated: seed 1, time scale 0.02")
    html = (run_dir / "report.html").read_text()
    assert "SIMULATED" in html and "the SimPy model ran this scenario" in html


def test_a_failed_expectation_exits_1(tmp_path: Path) -> None:
    # Without the storage pause nothing fires, but the file expects a perf_drop rollback.
    text = (SCENARIOS / "rollback_on_latency.yaml").read_text()
    path = tmp_path / "quiet.yaml"
    path.write_text(text.replace("      - pause: storage\n", "").replace(
        "      - resume: storage\n      - traffic", "      - traffic"))
    assert cli(["simulate", str(path), "--time-scale", "0.02", "--report-dir",
                str(tmp_path / "r")]) == 1


def test_monte_carlo_writes_the_distribution(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code = cli(["simulate", str(SCENARIOS / "rollback_on_error_rate.yaml"), "--time-scale",
                "0.02", "--runs", "6", "--seed", "10", "--report-dir", str(tmp_path)])
    assert code == 0
    (out,) = tmp_path.iterdir()
    summary = json.loads((out / "montecarlo.json").read_text())
    assert summary["runs"] == 6 and summary["simulated"] is True
    fired = summary["rollback_by_trigger"]["error_rate"]
    assert fired["of"] == 6 and 0 <= fired["ci95"][0] <= fired["p"] <= fired["ci95"][1] <= 1
    assert summary["any_loss"]["runs"] == 0
    assert [r["seed"] for r in summary["per_run"]] == list(range(10, 16))
    rep = out / summary["representative"]["run_dir"]
    assert (rep / "report.html").exists() and (out / "index.html").exists()
    table = capsys.readouterr().out
    assert "rollback by error_rate" in table and "any event lost" in table


def test_duration_stretches_the_plan(tmp_path: Path) -> None:
    sc = load_scenario(SCENARIOS / "full_migration.yaml")
    assert plan_seconds(sc) == 42 * 60
    assert time_scale_for(sc, time_scale=None, duration=8 * 86400) == pytest.approx(
        8 * 86400 / 2520)
    assert time_scale_for(sc, time_scale=None, duration=None) == 1.0
    code = cli(["simulate", str(SCENARIOS / "phase1_foundation.yaml"), "--duration", "1d",
                "--scale-load", "1/min", "--report-dir", str(tmp_path)])
    assert code == 0
    result = load_run(next(tmp_path.iterdir()) / "run.json")
    assert result.duration_s > 86400
    assert result.counts.emitted == pytest.approx(1440, rel=0.02)  # 1/min for a day


def test_scale_load() -> None:
    assert parse_load_scale(None, 50) == 1.0
    assert parse_load_scale("100", 50) == 100
    assert parse_load_scale("100x", 50) == 100
    assert parse_load_scale("0.5", 50) == 0.5
    assert parse_load_scale("17/min", 50) == pytest.approx(17 / 60 / 50)
    assert parse_load_scale("1000/s", 50) == 20
    with pytest.raises(SimulateInputError, match="expected a factor like 100"):
        parse_load_scale("lots", 50)
    with pytest.raises(SimulateInputError, match="above 0"):
        parse_load_scale("0", 50)


def test_reliability_flags() -> None:
    rel = parse_reliability(("storage=2h",), ("storage=30s",))
    assert rel["storage"].mtbf_s == 7200 and rel["storage"].mttr_s == 30
    with pytest.raises(SimulateInputError, match="--mttr storage=30s"):
        parse_reliability(("storage=2h",), ())
    with pytest.raises(SimulateInputError, match="SERVICE one of legacy"):
        parse_reliability(("kafka=2h",), ("kafka=1s",))
    with pytest.raises(SimulateInputError, match="expected a duration"):
        parse_reliability(("storage=often",), ("storage=1s",))


@pytest.mark.parametrize("args, message", [
    (["--time-scale", "0.1", "--duration", "1h"], "give --time-scale or --duration, not both"),
    (["--duration", "soon"], "--duration: duration 'soon'"),
    (["--scale-load", "many"], "expected a factor like 100"),
    (["--calibration", "/nonexistent/cal.json"], "no such calibration file"),
    (["--mtbf", "storage=1h"], "give how long a repair takes too"),
])
def test_bad_input_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   args: list[str], message: str) -> None:
    code = cli(["simulate", str(SCENARIOS / "phase1_foundation.yaml"), *args,
                "--report-dir", str(tmp_path)])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_unknown_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["simulate", "no_such_scenario"]) == 2
    assert "cutover list" in capsys.readouterr().err
