"""Scenario files: the shipped ones load; bad ones are refused naming file, line and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scenario import ScenarioError, load_scenario
from harness.scenario.model import (
    HoldStep,
    ServiceStep,
    ShadowStep,
    Threshold,
    TrafficStep,
    parse_duration,
)

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))
EXPECTED = {"phase1_foundation", "phase2_parallel", "phase3_traffic_switch", "phase4_cleanup",
            "full_migration", "rollback_on_error_rate", "rollback_on_latency", "load_baseline",
            "load_spike", "load_soak"}


def test_every_scenario_the_plan_needs_is_shipped_and_loads():
    names = {load_scenario(p).name for p in SHIPPED}
    assert names >= EXPECTED


def test_the_full_migration_walks_every_traffic_step():
    s = load_scenario(ROOT / "scenarios" / "full_migration.yaml")
    assert [p.name for p in s.phases] == ["foundation", "parallel", "traffic_switch", "cleanup"]
    traffic = [st for p in s.phases for st in p.steps if isinstance(st, TrafficStep)]
    assert traffic[0].steps == [10, 25, 50, 75, 90, 100]
    assert traffic[0].hold == 300.0 and s.scaled(traffic[0].hold) == pytest.approx(6.0)
    assert {t.name for t in s.triggers} >= {"error_rate", "loss", "inconsistent",
                                            "service_unavailable"}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


GOOD = """\
name: tiny
phases:
  - name: only
    steps:
      - start: [influxdb, storage]
      - shadow: on
      - hold: 5m
"""


def test_steps_are_one_key_mappings():
    import yaml

    from harness.scenario.model import Scenario

    s = Scenario.model_validate(yaml.safe_load(GOOD))
    start, shadow, hold = s.phases[0].steps
    assert isinstance(start, ServiceStep) and start.services == ["influxdb", "storage"]
    assert isinstance(shadow, ShadowStep) and shadow.enabled is True
    assert isinstance(hold, HoldStep) and hold.duration == 300


@pytest.mark.parametrize("broken, line, words", [
    (GOOD.replace("hold: 5m", "hold: 5 minutes"), 7, "expected a duration like"),
    (GOOD.replace("shadow: on", "shadwo: on"), 6, "a step is one of start, stop"),
    (GOOD.replace("[influxdb, storage]", "[influxdb, storge]"), 5, "storge"),
    (GOOD + "expect: {rollback: triggered}\n", 8, "no triggers"),  # the expect key
    (GOOD + "slos: ['p(95) < 100']\n", 8, "a latency needs a unit"),
    (GOOD + "colour: blue\n", 8, "unknown key"),
    ("name: x\nphases: [\n", 3, "not valid YAML"),
])
def test_errors_name_the_file_the_line_and_what_is_expected(tmp_path, broken, line, words):
    path = _write(tmp_path, broken)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert words in message


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "nope.yaml")


@pytest.mark.parametrize("text, metric, op, value", [
    ("p(95) < 100ms", "p95", "<", 0.1),
    ("p(99)<1s", "p99", "<", 1.0),
    ("error_rate < 0.1%", "error_rate", "<", 0.001),
    ("loss == 0", "loss", "==", 0.0),
    ("availability >= 99.9%", "availability", ">=", 0.999),
    ("throughput >= 10/s", "throughput", ">=", 10.0),
    ("perf_drop > 20%", "perf_drop", ">", 0.2),
])
def test_thresholds_in_k6_style(text, metric, op, value):
    t = Threshold.parse(text)
    assert (t.metric, t.op) == (metric, op) and t.value == pytest.approx(value)


def test_threshold_holds():
    assert Threshold.parse("p(95) < 100ms").holds(0.099)
    assert not Threshold.parse("p(95) < 100ms").holds(0.1)
    assert Threshold.parse("loss == 0").holds(0) and not Threshold.parse("loss == 0").holds(1)


@pytest.mark.parametrize("text, seconds", [("5m", 300), ("30s", 30), ("250ms", 0.25),
                                           ("2h", 7200), ("8d", 691200), (12, 12)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds
