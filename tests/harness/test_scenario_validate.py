"""harness/scenario/validate.py: every problem of a scenario file at once, each with its line,
errors for plans that cannot be meant and warnings for plans that probably are not (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scenario import ScenarioError, load_scenario
from harness.scenario.validate import Problem, check_file

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"

GOOD = """\
name: plan
time_scale: 0.02
load: 50/s
triggers:
  - error_rate > 1%
phases:
  - name: foundation
    steps:
      - start: [influxdb, admin, legacy, weather, storage, enrichment, ingestion]
      - wait_healthy: all
  - name: switch
    steps:
      - shadow: on
      - traffic: {steps: [10, 50, 100], hold: 5m}
      - hold: 5m
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _found(problems: list[Problem]) -> list[tuple[int | None, str]]:
    return [(p.line, p.severity) for p in problems]


def test_a_good_plan_has_no_problems(tmp_path: Path) -> None:
    assert check_file(_write(tmp_path, GOOD)) == []


def test_problem_reads_file_line_severity_message() -> None:
    assert str(Problem(Path("a.yaml"), 3, "error", "bad")) == "a.yaml:3: error: bad"
    assert str(Problem(Path("a.yaml"), None, "warning", "odd")) == "a.yaml: warning: odd"


def test_every_error_of_a_file_is_returned_with_its_own_line(tmp_path: Path) -> None:
    text = (GOOD.replace("load: 50/s", "load: 2000000000/s")
            .replace("- error_rate > 1%", "- eror_rate > 1%")
            .replace("hold: 5m\n", "hold: 99999999999999999999d\n")
            + "fleet: {entities: 2000000000}\n")
    problems = check_file(_write(tmp_path, text))
    assert _found(problems) == [(3, "error"), (5, "error"), (15, "error"), (16, "error")]
    assert "entities" in problems[3].message and "2000000000" in problems[3].message


def test_plan_errors_are_found_even_when_a_side_key_is_broken(tmp_path: Path) -> None:
    # A broken fleet must not hide a fault tied to a traffic step that never comes.
    text = GOOD + "fleet: {entities: 2000000000}\nfaults:\n  - {kind: kill, service: storage, " \
                  "during: traffic 55}\n"
    problems = check_file(_write(tmp_path, text))
    assert _found(problems) == [(16, "error"), (18, "error")]
    assert "no traffic step goes to 55%" in problems[1].message


def test_a_during_fault_with_no_such_step_is_reported_at_the_faults_line(tmp_path: Path) -> None:
    text = GOOD + "faults:\n  - {kind: latency, hop: enrichment-storage, latency: 2ms}\n" \
                  "  - {kind: kill, service: storage, during: traffic 55}\n"
    path = _write(tmp_path, text)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)  # `cutover run` names the same line as validate
    assert str(err.value).startswith(f"{path}:18: "), str(err.value)
    assert [(p.line, p.severity) for p in check_file(path)] == [(18, "error")]


def test_traffic_stepping_down_to_zero_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("[10, 50, 100]", "[50, 10, 100, 100, 0]"))
    problems = check_file(path)
    assert [p.severity for p in problems] == ["error", "warning", "warning"]
    assert "down from 100% to 0%" in problems[0].message and "rollback" in problems[0].message
    assert "down from 50% to 10%" in problems[1].message
    assert "100% again" in problems[2].message
    assert all(p.line == 14 for p in problems)
    with pytest.raises(ScenarioError, match="down from 100% to 0%"):
        load_scenario(path)


def test_a_decrease_alone_is_a_warning_and_the_file_still_loads(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("[10, 50, 100]", "[50, 10, 100]"))
    assert _found(check_file(path)) == [(14, "warning")]
    assert load_scenario(path).name == "plan"


def test_stopping_a_service_already_stopped_is_a_warning(tmp_path: Path) -> None:
    text = GOOD + "      - stop: legacy\n      - stop: legacy\n"
    problems = check_file(_write(tmp_path, text))
    stopped_twice = [p for p in problems if p.line == 17]
    assert len(stopped_twice) == 1
    assert stopped_twice[0].message == "stop legacy: legacy is not running (stopped at line 16)"


def test_a_rollback_to_a_stopped_legacy_is_a_warning(tmp_path: Path) -> None:
    text = GOOD + "      - stop: legacy\n      - hold: 5m\n"
    problems = check_file(_write(tmp_path, text))
    assert _found(problems) == [(16, "warning")]
    assert "rolls every event back to a legacy that is not running" in problems[0].message
    # Rollback steps that start legacy first are fine.
    fixed = text + "rollback:\n  - start: legacy\n  - wait_healthy: legacy\n  - rollback: x\n"
    assert check_file(_write(tmp_path, fixed)) == []


def test_a_trigger_typo_is_one_message_with_the_names_and_a_guess(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("- error_rate > 1%", "- eror_rate > 1%"))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    lines = str(err.value).splitlines()
    assert len(lines) == 1, lines  # not a second message about its threshold
    assert "unknown trigger 'eror_rate' (did you mean 'error_rate'?)" in lines[0]
    assert "error_rate, perf_drop, loss, service_unavailable, inconsistent" in lines[0]


def test_unscaled_times_that_never_take_effect_are_warned_about(tmp_path: Path) -> None:
    # time_scale 0.02: the plan's 15 minutes of holds take 18 s, but a load profile's times
    # and a trigger's window are real seconds: a spike at 120 s never comes.
    text = (GOOD.replace("- error_rate > 1%", "- {loss: 'loss > 0', window: 5m}")
            + "      - load: {kind: spike, base_rate: 10/s, peak_rate: 100/s, at: 120, "
              "duration: 5}\n      - hold: 5m\n")
    problems = check_file(_write(tmp_path, text))
    assert _found(problems) == [(5, "warning"), (16, "warning")]
    assert all("time_scale 0.02 scales holds and fault times, not load profile times or "
               "trigger windows" in p.message for p in problems)
    # The same times at time_scale 1 fit in the plan.
    assert check_file(_write(tmp_path, text.replace("time_scale: 0.02", "time_scale: 1"))) == []


def test_bad_input_never_raises(tmp_path: Path) -> None:
    assert _found(check_file(tmp_path / "missing.yaml")) == [(None, "error")]
    assert _found(check_file(_write(tmp_path, "name: x\nphases: [\n"))) == [(3, "error")]
    assert _found(check_file(_write(tmp_path, "- just\n- a list\n"))) == [(1, "error")]
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00")
    assert _found(check_file(tmp_path / "bin.yaml")) == [(None, "error")]
    assert _found(check_file(tmp_path)) == [(None, "error")]


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_scenario_has_no_errors(path: Path) -> None:
    assert [str(p) for p in check_file(path) if p.severity == "error"] == []
