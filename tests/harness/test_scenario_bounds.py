"""Absurd sizes, rates and times are refused when a scenario is loaded (issue 16), with the
file's line and what the fake Home Assistant can actually do, before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scenario import ScenarioError, load_scenario
from harness.scenario.durations import parse_duration
from simulators.home_assistant.fleet import FleetSpec
from simulators.home_assistant.limits import (
    MAX_BURST,
    MAX_DURATION_S,
    MAX_ENTITIES,
    MAX_RATE,
)
from simulators.home_assistant.load import parse_profile

PLAN = """\
name: bounded
time_scale: 0.02
fleet: {entities: 200}
load: 50/s
phases:
  - name: only
    steps:
      - start: [influxdb, admin, legacy]
      - wait_healthy: all
      - hold: 5m
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_plan_used_below_loads(tmp_path: Path) -> None:
    assert load_scenario(_write(tmp_path, PLAN)).fleet.entities == 200


def test_two_billion_entities_are_refused_at_load_with_the_line(tmp_path: Path) -> None:
    # Before the bound this built a fleet until memory ran out; now it must raise at once.
    path = _write(tmp_path, PLAN.replace("{entities: 200}", "{entities: 2000000000}"))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    message = str(err.value)
    assert message.startswith(f"{path}:3: fleet.entities: ")
    assert f"at most {MAX_ENTITIES}" in message and "fake Home Assistant" in message


@pytest.mark.parametrize("change, line, words", [
    (("load: 50/s", "load: 2000000000/s"), 4, f"at most {MAX_RATE:g}/s"),
    (("load: 50/s", "load: burst:2000000000"), 4, f"at most {MAX_BURST}"),
    (("load: 50/s", "load: {kind: ramp, start_rate: 1/s, end_rate: 30000/s, duration: 60}"),
     4, f"at most {MAX_RATE:g}/s"),
    (("load: 50/s", "load: {kind: soak, rate: 15000/s, duration: 60, wobble: 0.5}"),
     4, "peaks at 22500/s"),
    (("load: 50/s", "load: {kind: constant, rate: 5/s, duration: .inf}"), 4, "at most 30d"),
    (("hold: 5m", "hold: 99999999999999999999d"), 10, "at most 30d"),
    (("hold: 5m", "hold: 31d"), 10, "at most 30d"),
    (("hold: 5m", "hold: .nan"), 10, "expected a duration"),
    (("time_scale: 0.02", "time_scale: 0.0000001"), 2, "greater than or equal to 0.001"),
    (("time_scale: 0.02", "time_scale: 1000000"), 2, "less than or equal to 100"),
])
def test_absurd_numbers_are_refused_with_their_line(tmp_path: Path, change: tuple[str, str],
                                                    line: int, words: str) -> None:
    path = _write(tmp_path, PLAN.replace(*change))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert str(err.value).startswith(f"{path}:{line}: "), str(err.value)
    assert words in str(err.value)


def test_a_duration_too_big_for_a_float_is_an_error_not_a_crash() -> None:
    with pytest.raises(ValueError, match="at most 30d"):
        parse_duration(10**400)  # float(10**400) raises OverflowError
    with pytest.raises(ValueError, match="at most 30d"):
        parse_duration("9" * 400 + "d")  # float("9" * 400) is inf


def test_a_plan_whose_holds_add_up_past_a_month_is_refused(tmp_path: Path) -> None:
    holds = "".join("      - hold: 20d\n" for _ in range(2))
    path = _write(tmp_path, PLAN.replace("      - hold: 5m\n", holds))
    with pytest.raises(ScenarioError, match="holds add up to 40d: at most 30d"):
        load_scenario(path)


def test_a_plan_stretched_past_a_month_of_real_time_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, PLAN.replace("time_scale: 0.02", "time_scale: 10")
                  .replace("hold: 5m", "hold: 4d"))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert str(err.value).startswith(f"{path}:2: "), str(err.value)
    assert "of real time" in str(err.value)


@pytest.mark.parametrize("text, words", [
    ("2000000000/s", f"at most {MAX_RATE:g}/s"),
    ("burst:2000000000", f"at most {MAX_BURST}"),
    ("step:10/s*30,30000/s*30", f"at most {MAX_RATE:g}/s"),
    ("spike:20/s,500/s@1e9+10", "at most 30d"),
])
def test_the_cli_profile_strings_have_the_same_bounds(text: str, words: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_profile(text)
    assert words in str(err.value)
    # The shape was right: a bound's message does not list every accepted form.
    assert "accepted forms" not in str(err.value)


def test_the_bounds_themselves_are_accepted() -> None:
    assert FleetSpec(entities=MAX_ENTITIES).entities == MAX_ENTITIES
    assert parse_profile(f"{MAX_RATE:g}/s").rate == MAX_RATE  # type: ignore[union-attr]
    assert parse_profile(f"burst:{MAX_BURST}").count == MAX_BURST  # type: ignore[union-attr]
    assert parse_duration("30d") == MAX_DURATION_S


@pytest.mark.parametrize("fault, words", [
    ("{kind: disk_full, service: storage, size: 100GiB}", "at most 1GiB"),
    ("{kind: bandwidth, hop: enrichment-storage, rate: 99999999999}", "less than or equal"),
    ("{kind: limit_data, hop: enrichment-storage, bytes: 99999999999999999}", "less than or equal"),
])
def test_fault_sizes_are_bounded(tmp_path: Path, fault: str, words: str) -> None:
    path = _write(tmp_path, PLAN + f"      - fault: {fault}\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert str(err.value).startswith(f"{path}:11: "), str(err.value)
    assert words in str(err.value)
