"""Rollback triggers and traffic gates, as Flagger's analysis runs them: continuously while the
migration is in progress, each trigger over its own window, firing once its condition has held
for its ``for:``; a gate judges a traffic step's hold before the next step may start.

The evidence's words are part of the rule: a rollback reads the same ("new pipeline's error
rate 11.19% (trigger: error_rate > 1%, window 10 s)") whether a real run or the simulator
decided it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.scenario.topology import NEW_SERVICES

from .evidence import Evidence, WindowEvidence
from .measures import format_measured, is_latency

if TYPE_CHECKING:
    from harness.scenario.model import Threshold, Trigger



@dataclass(slots=True)
class Firing:
    trigger: str  # the trigger's name, or "gate"
    evidence: str  # measured against threshold, in words


@dataclass
class TriggerState:
    """Per-trigger memory: since when its condition has held (for ``for:``)."""

    since_s: dict[int, float] = field(default_factory=dict)


def _condition(trigger: Trigger, evidence: Evidence) -> tuple[bool, str]:
    """Whether the trigger's condition holds now, and the evidence in words if it does."""
    if trigger.name == "service_unavailable":
        down = evidence.unhealthy(trigger.services or NEW_SERVICES)
        return bool(down), f"unavailable: {', '.join(down)}"
    threshold = trigger.threshold
    assert threshold is not None  # every other trigger has one (the scenario model sees to it)
    first, detail = "", ""
    if trigger.name == "loss":
        late, first = evidence.overdue(trigger.window)
        measured: float | None = float(late)
        what = f"events not stored within the {trigger.window:g} s window"
    else:
        window = evidence.window(trigger.window)
        if trigger.name == "error_rate":
            measured, what = window.new_error_rate, "new pipeline's error rate"
        elif trigger.name == "perf_drop":
            measured, what = window.perf_drop(), "new p95 slower than legacy by"
            judged = window.perf_judgement()
            detail = f" ({judged})" if judged else ""
        elif trigger.name == "inconsistent":
            # The first offender goes into the evidence: a rollback must say which point and why.
            bad, first = evidence.inconsistent(window, trigger.window)
            measured, what = float(bad), "events stored inconsistently"
        else:
            raise ValueError(f"no rule for trigger {trigger.name!r}")
    if measured is None or not threshold.holds(measured):
        return False, ""
    value = format_measured(threshold, measured)
    if trigger.name == "loss":  # a count of events: "4 events not stored within ..."
        words = f"{value} {what} (trigger: {threshold.text})"
    else:
        words = f"{what} {value}{detail} (trigger: {threshold.text}, window {trigger.window:g} s)"
    return True, words + (f"; first: {first}" if first else "")


def evaluate(triggers: Sequence[Trigger], evidence: Evidence,
             state: TriggerState) -> Firing | None:
    """The first trigger whose condition has held for its ``for:`` duration, if any."""
    now = evidence.now_s()
    for i, trigger in enumerate(triggers):
        holds, words = _condition(trigger, evidence)
        if not holds:
            state.since_s.pop(i, None)
            continue
        since = state.since_s.setdefault(i, now)
        if now - since >= trigger.for_:
            return Firing(trigger.name, words)
    return None


def gate_measure(threshold: Threshold, window: WindowEvidence) -> tuple[float | None, str]:
    """What a gate measures for a threshold over a step's hold, and the judge's words beside
    it; (None, "") for metrics gates do not judge (loss and consistency: triggers and the final
    accounting judge those)."""
    metric = threshold.metric
    if metric == "error_rate":
        return window.new_error_rate, ""  # the canary's own errors
    if is_latency(metric):
        p = window.p95_ms(("legacy", "new"))
        return (None if p is None else p / 1000), ""
    if metric == "perf_drop":
        judged = window.perf_judgement()
        return window.perf_drop(), (f" ({judged})" if judged else "")
    if metric == "availability":
        span = max(1e-9, window.end_s - window.start_s)
        return 1.0 - window.stalled_seconds / span, ""
    return None, ""


def check_gate(gate: Sequence[Threshold], window: WindowEvidence) -> Firing | None:
    """A traffic step's gate over the step's hold: every threshold must hold."""
    for threshold in gate:
        measured, detail = gate_measure(threshold, window)
        if measured is not None and not threshold.holds(measured):
            return Firing("gate", f"gate {threshold.text} failed: measured "
                                  f"{format_measured(threshold, measured)}{detail}")
    return None
