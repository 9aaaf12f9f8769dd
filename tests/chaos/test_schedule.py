"""Drawing chaos schedules: reproducible from the seed, within bounds, valid as scenarios."""

from __future__ import annotations

import json

import pytest

from harness.chaos.schedule import (
    DEFAULT_VOCABULARY,
    FAULT,
    NEW_OWNS_ALL,
    OPTIONS,
    Schedule,
    ScheduledFault,
    ScheduleError,
    Timeline,
    admissible,
    draw_schedule,
    problems,
    scenario_for,
    scenario_yaml,
    span,
    targets,
)
from harness.scenario.loader import load_scenario
from harness.scenario.model import FaultStep, HoldStep, ServiceStep, TrafficStep

SEEDS = range(60)


def test_same_seed_same_schedule():
    for seed in (0, 1, 7, 123456789):
        a = draw_schedule(seed, 40)
        b = draw_schedule(seed, 40)
        assert a == b and a.to_json() == b.to_json()


def test_different_seeds_different_schedules():
    drawn = {draw_schedule(seed, 40).key() for seed in SEEDS}
    assert len(drawn) == len(SEEDS)


@pytest.mark.parametrize("duration", [20, 40, 90, 300])
def test_every_fault_heals_before_the_end_with_room_to_recover(duration):
    tl = Timeline(duration)
    for seed in SEEDS:
        schedule = draw_schedule(seed, duration)
        assert schedule.faults, seed
        assert problems(schedule) == [], seed
        for f in schedule.faults:
            assert f.at >= 0.5
            assert f.ends <= duration - tl.recover + 1e-6, (seed, f.describe())
            option = next(o for o in OPTIONS[f.fault.kind] if o.target in targets(f.fault))
            # a fault the vocabulary heals with `for` always has one (the runner heals it)
            assert (f.for_ is None) == (option.for_range is None)


def test_faults_on_one_target_never_overlap():
    for seed in SEEDS:
        faults = draw_schedule(seed, 60, faults=7).faults
        for i, a in enumerate(faults):
            for b in faults[i + 1:]:
                if targets(a.fault) & targets(b.fault):
                    assert a.ends <= b.at or b.ends <= a.at, (seed, a.describe(), b.describe())


def test_faults_that_hurt_legacy_come_only_where_legacy_has_nothing_to_lose():
    tl = Timeline(60)
    seen = set()
    for seed in range(200):
        for f in draw_schedule(seed, 60).faults:
            kind, fault = f.fault.kind, f.fault
            where = None
            if kind == "influxdb_outage" or (kind == "down" and fault.hop in (
                    "ha-legacy", "legacy-influxdb")):
                where = (NEW_OWNS_ALL,)
            elif kind in ("ha_restart", "ha_drop"):
                where = (NEW_OWNS_ALL,)  # Home Assistant's faults cut legacy off too
            if where is None:
                continue
            seen.add(kind)
            assert any(tl.window(w)[0] <= f.at and f.ends <= tl.window(w)[1] for w in where), \
                (seed, f.describe())
    assert {"influxdb_outage", "ha_restart", "ha_drop", "down"} <= seen


def test_ingestion_is_killed_and_cut_off_anywhere_since_it_recovers_its_gaps():
    """Ingestion reads what it missed back from history: its kill -9, restart and lost
    connection are drawn over the whole migration, mid-switch included."""
    tl = Timeline(60)
    mid_switch = set()
    for seed in range(200):
        for f in draw_schedule(seed, 60).faults:
            fault = f.fault
            ingestion = (
                fault.kind in ("kill", "restart", "disconnect") and fault.service == ["ingestion"]
            ) or (fault.kind == "down" and fault.hop == "ha-ingestion")
            if ingestion and tl.t_traffic <= f.at < tl.t_step(100):
                mid_switch.add(fault.kind)
    assert {"kill", "restart", "disconnect", "down"} <= mid_switch


def test_the_default_vocabulary_is_drawn_whole_and_nothing_else():
    kinds = {f.fault.kind for seed in range(200) for f in draw_schedule(seed, 60).faults}
    assert kinds == set(DEFAULT_VOCABULARY)


def test_vocabulary_restricts_the_kinds():
    for seed in SEEDS:
        kinds = {f.fault.kind for f in draw_schedule(seed, 40, vocabulary="kill,latency").faults}
        assert kinds <= {"kill", "latency"}
    assert {f.fault.kind for f in draw_schedule(3, 60, vocabulary=["stop"]).faults} == {"stop"}


def test_bad_vocabulary_duration_or_count_say_what_is_expected():
    with pytest.raises(ScheduleError, match="unknown fault kind.*nope.*kill"):
        draw_schedule(1, 40, vocabulary="kill,nope")
    with pytest.raises(ScheduleError, match="empty"):
        draw_schedule(1, 40, vocabulary=" , ")
    with pytest.raises(ScheduleError, match="at least 20"):
        draw_schedule(1, 10)
    with pytest.raises(ScheduleError, match="fewer"):
        draw_schedule(1, 20, vocabulary="influxdb_outage", faults=12)


def test_fault_count():
    assert len(draw_schedule(5, 40, faults=3).faults) == 3
    assert draw_schedule(5, 40, faults=0).faults == []
    counts = {len(draw_schedule(seed, 80).faults) for seed in SEEDS}
    assert min(counts) >= 5 and max(counts) <= 10  # half to all of one per 8 s


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 42])
def test_the_schedule_validates_as_a_scenario(seed, tmp_path):
    schedule = draw_schedule(seed, 40)
    scenario = scenario_for(schedule)
    assert scenario.name == f"chaos-{seed}" and scenario.time_scale == 1.0
    assert [p.name for p in scenario.phases] == ["foundation", "parallel", "traffic_switch",
                                                 "cleanup"]
    steps = {p.name: p.steps for p in scenario.phases}
    faults = [s.fault for p in scenario.phases for s in p.steps if isinstance(s, FaultStep)]
    assert len(faults) == len(schedule.faults)
    # each fault is anchored where its time falls, with `at` counted from that step
    tl = schedule.timeline
    for sf, fault in zip(schedule.faults, faults, strict=True):
        phase, offset = tl.anchor(sf.at)
        assert [p.name for p in scenario.phases
                if any(isinstance(s, FaultStep) and s.fault is fault for s in p.steps)] == [phase]
        assert fault.at == pytest.approx(offset)
        assert fault.for_ == sf.for_ and fault.kind == sf.fault.kind
    (traffic,) = [s for s in steps["traffic_switch"] if isinstance(s, TrafficStep)]
    assert traffic.steps == [10, 25, 50, 75, 90, 100] and traffic.hold == tl.step_hold
    # cleanup faults come after legacy is stopped
    cleanup = steps["cleanup"]
    stop = next(i for i, s in enumerate(cleanup) if isinstance(s, ServiceStep))
    assert all(i > stop for i, s in enumerate(cleanup) if isinstance(s, FaultStep))
    assert isinstance(cleanup[-1], HoldStep)
    holds = tl.parallel + 6 * tl.step_hold + tl.cleanup
    assert holds == pytest.approx(40, abs=0.2)
    # and the YAML is a scenario file `cutover run` loads the same
    path = tmp_path / "chaos.yaml"
    path.write_text(scenario_yaml(schedule))
    assert load_scenario(path) == scenario


def test_json_round_trip(tmp_path):
    schedule = draw_schedule(11, 50, vocabulary="latency,ha_drop,weather_errors,pause")
    path = schedule.save(tmp_path / "schedule.json")
    again = Schedule.load(path)
    assert again == schedule
    assert json.loads(path.read_text())["seed"] == 11


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(ScheduleError, match="no such schedule file"):
        Schedule.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"duration_s": 40, "faults": [{"id": 1, "fault": {"kind": "melt"}}]}')
    with pytest.raises(ScheduleError, match="bad.json: not a chaos schedule"):
        Schedule.load(bad)


def test_problems_spot_what_the_draw_never_makes():
    def one(**fault):
        return Schedule(duration_s=40, faults=[ScheduledFault(id=1, fault=FAULT.validate_python(
            fault))])

    assert problems(one(kind="kill", service="storage", at=5, **{"for": 3})) == []
    # InfluxDB down while legacy still owns events: legacy would drop them
    assert "outside" in problems(one(kind="influxdb_outage", at=5, **{"for": 3}))[0]
    assert "needs a 'for'" in problems(one(kind="kill", service="storage", at=5))[0]
    assert "not in the chaos vocabulary" in problems(one(kind="rogue_writer", at=5))[0]
    assert "outside" in problems(one(kind="kill", service="storage", at=35, **{"for": 3}))[0]
    two = Schedule(duration_s=40, faults=[
        ScheduledFault(id=1, fault=FAULT.validate_python(
            {"kind": "disconnect", "service": "storage", "at": 5, "for": 4})),
        ScheduledFault(id=2, fault=FAULT.validate_python(
            {"kind": "down", "hop": "enrichment-storage", "at": 7, "for": 4}))])
    assert "both act on enrichment-storage" in problems(two)[0]


def test_spans_of_faults_that_end_by_themselves():
    restart = FAULT.validate_python({"kind": "ha_restart", "downtime": 2.5, "at": 1})
    assert span(restart) == pytest.approx(4.5)
    assert admissible(FAULT.validate_python({"kind": "restart", "service": "storage",
                                             "at": 5}), Timeline(40)) is None


def test_a_plan_without_enrichment_draws_nothing_on_it_nor_on_its_weather_api():
    from pathlib import Path

    from harness.pipeline_file import load_pipeline
    renamed = load_pipeline(Path(__file__).resolve().parents[2] / "pipelines"
                            / "renamed-no-enrichment.yaml")
    drawn = [f.fault for seed in SEEDS
             for f in draw_schedule(seed, 60, there=renamed.reaches).faults]
    named = [f.describe() for f in drawn if "enrichment" in f.describe() or "weather" in f.kind]
    assert drawn and named == []
    assert {f.kind for f in drawn} >= {"kill", "pause", "latency", "down", "influxdb_outage"}
    # With every role there, the same seeds draw what they always drew.
    assert [draw_schedule(s, 60, there=lambda _: True).key() for s in SEEDS[:10]] == \
        [draw_schedule(s, 60).key() for s in SEEDS[:10]]
    with pytest.raises(ScheduleError, match="weather_slow: nothing this pipeline has to act on"):
        draw_schedule(1, 60, vocabulary="kill,weather_slow", there=renamed.reaches)
