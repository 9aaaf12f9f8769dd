"""The migration's rules on hand-made evidence: no monitor, no model, no clock.

``tests/des/test_triggers.py`` shows the runner's and the simulator's evidence read alike; this
file pins what the rules themselves decide, and in which words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from harness.scenario.faults import ServiceFault
from harness.scenario.model import Threshold, Trigger
from harness.scenario.rules import (
    TriggerState,
    armed_at_start,
    check_gate,
    error_rate,
    evaluate,
    fault_times,
    format_measured,
    tied_to_step,
)


@dataclass
class Window:
    start_s: float = 0.0
    end_s: float = 10.0
    new_error_rate: float = 0.0
    stalled_seconds: float = 0.0
    p95: float | None = 20.0
    drop: float | None = 0.0
    judgement: str = ""

    def p95_ms(self, paths: tuple[str, ...]) -> float | None:
        return self.p95

    def perf_drop(self) -> float | None:
        return self.drop

    def perf_judgement(self) -> str:
        return self.judgement


@dataclass
class Evidence:
    now: float = 0.0
    win: Window = field(default_factory=Window)
    down: list[str] = field(default_factory=list)
    late: tuple[int, str] = (0, "")
    bad: tuple[int, str] = (0, "")
    windows_asked: list[float] = field(default_factory=list)

    def now_s(self) -> float:
        return self.now

    def window(self, seconds: float) -> Window:
        self.windows_asked.append(seconds)
        return self.win

    def unhealthy(self, services: Sequence[str]) -> list[str]:
        return [s for s in services if s in self.down]

    def overdue(self, grace_s: float) -> tuple[int, str]:
        return self.late

    def inconsistent(self, window: Window, grace_s: float) -> tuple[int, str]:
        return self.bad


def trigger(text: str, **kw: object) -> Trigger:
    name = text.split()[0]
    if name == "service_unavailable":
        return Trigger.model_validate({"name": name, **kw})
    return Trigger.model_validate({"name": name, "threshold": text, **kw})


def test_error_rate_fires_with_its_figure_and_window() -> None:
    ev = Evidence(win=Window(new_error_rate=0.1119))
    firing = evaluate([trigger("error_rate > 1%")], ev, TriggerState())
    assert firing is not None and firing.trigger == "error_rate"
    assert firing.evidence == ("new pipeline's error rate 11.19% "
                               "(trigger: error_rate > 1%, window 10 s)")
    assert evaluate([trigger("error_rate > 1%")], Evidence(win=Window(new_error_rate=0.01)),
                    TriggerState()) is None  # 1% is not more than 1%


def test_a_condition_must_hold_for_its_for_and_forgets_when_it_lapses() -> None:
    rule = [trigger("error_rate > 1%", **{"for": "5s"})]
    state = TriggerState()
    ev = Evidence(win=Window(new_error_rate=0.5))
    for t in (0.0, 4.9):
        ev.now = t
        assert evaluate(rule, ev, state) is None
    ev.now, ev.win.new_error_rate = 5.5, 0.0  # lapses: the clock starts again
    assert evaluate(rule, ev, state) is None
    ev.win.new_error_rate = 0.5
    for t in (6.0, 10.9):
        ev.now = t
        assert evaluate(rule, ev, state) is None
    ev.now = 11.0
    assert evaluate(rule, ev, state) is not None


def test_the_first_trigger_in_the_scenario_order_wins() -> None:
    ev = Evidence(win=Window(new_error_rate=0.5), down=["storage"])
    rules = [trigger("service_unavailable"), trigger("error_rate > 1%")]
    firing = evaluate(rules, ev, TriggerState())
    assert firing is not None and firing.trigger == "service_unavailable"
    assert firing.evidence == "unavailable: storage"


def test_service_unavailable_watches_the_new_path_unless_told() -> None:
    ev = Evidence(down=["legacy"])
    assert evaluate([trigger("service_unavailable")], ev, TriggerState()) is None
    named = trigger("service_unavailable", services=["legacy"])
    assert evaluate([named], ev, TriggerState()) is not None


def test_loss_is_a_count_and_names_the_first_event() -> None:
    ev = Evidence(late=(4, "sensor.a at 12:00:01.000"))
    firing = evaluate([trigger("loss > 0", window="30s")], ev, TriggerState())
    assert firing is not None
    assert firing.evidence == ("4 events not stored within the 30 s window (trigger: loss > 0)"
                               "; first: sensor.a at 12:00:01.000")
    assert ev.windows_asked == []  # loss reads the books, not a window


def test_inconsistent_names_the_first_offender_and_perf_drop_quotes_the_judge() -> None:
    ev = Evidence(bad=(2, "sensor.b: written by new, owned by legacy at 50%"),
                  win=Window(drop=0.3, judgement="U test p=0.001"))
    firing = evaluate([trigger("inconsistent > 0")], ev, TriggerState())
    assert firing is not None and firing.evidence.endswith(
        "; first: sensor.b: written by new, owned by legacy at 50%")
    firing = evaluate([trigger("perf_drop > 20%")], ev, TriggerState())
    assert firing is not None
    assert firing.evidence == ("new p95 slower than legacy by 30.00% (U test p=0.001) "
                               "(trigger: perf_drop > 20%, window 10 s)")


def test_an_unmeasurable_figure_never_fires() -> None:
    ev = Evidence(win=Window(drop=None))
    assert evaluate([trigger("perf_drop > 20%")], ev, TriggerState()) is None


@pytest.mark.parametrize("text, window, fails", [
    ("p(95) < 100ms", Window(p95=120.0), "gate p(95) < 100ms failed: measured 120.0 ms"),
    ("p(95) < 100ms", Window(p95=None), None),
    ("error_rate < 0.1%", Window(new_error_rate=0.002), "measured 0.20%"),
    ("availability > 99%", Window(start_s=0, end_s=100, stalled_seconds=2), "measured 98.00%"),
    ("availability > 99%", Window(start_s=0, end_s=100, stalled_seconds=0.5), None),
    ("loss == 0", Window(), None),  # judged by triggers and the accounting, not by a gate
])
def test_gates(text: str, window: Window, fails: str | None) -> None:
    firing = check_gate([Threshold.parse(text)], window)
    if fails is None:
        assert firing is None
    else:
        assert firing is not None and firing.trigger == "gate" and fails in firing.evidence


def test_error_rate_of_counters() -> None:
    assert error_rate(0, 0) == 0.0
    assert error_rate(3, 0) == 1.0  # refused before anything counted: all failed
    assert error_rate(1, 200) == 0.005
    assert error_rate(-1, 10) == 0.0  # a restarted service's counters went back


def test_measured_values_read_in_their_thresholds_units() -> None:
    assert format_measured(Threshold.parse("p(99) < 1s"), 0.0413) == "41.3 ms"
    assert format_measured(Threshold.parse("perf_drop > 20%"), 0.25) == "25.00%"
    assert format_measured(Threshold.parse("loss > 0"), 4.0) == "4"
    assert format_measured(Threshold.parse("loss > 0"), None) == "n/a"


def test_the_fault_timetable_scales_plan_time() -> None:
    kill = ServiceFault.model_validate({"kind": "kill", "service": "storage", "at": "10s",
                                        "for": "30s"})
    tied = ServiceFault.model_validate({"kind": "pause", "service": "storage",
                                        "during": "traffic 50"})
    times = fault_times(kill, 0.5)
    assert (times.at_s, times.lasts_s, times.during) == (5.0, 15.0, None)
    assert times.suffix() == " for 15 s"
    assert fault_times(tied, 0.5).suffix() == " during traffic 50%"
    assert armed_at_start([kill, tied]) == [kill]
    assert tied_to_step([kill, tied], 50) == [tied] and tied_to_step([kill, tied], 25) == []
