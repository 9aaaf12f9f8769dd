"""Rollback triggers and traffic gates on the simulated monitor's evidence, with the rules of
``harness/runner/triggers.py``: each trigger has its window and ``for:``, the first one whose
condition has held long enough fires; a gate judges a traffic step's hold; the evidence reads
as the real runner's does ("new pipeline's error rate 11.19% (trigger: error_rate > 1%,
window 10 s)").

The scenario's ``Trigger`` and ``Threshold`` objects are used as they are (``name``,
``threshold.metric``/``holds``/``text``, ``window``, ``for_``, ``services``), so this module
needs nothing from the harness. ``tests/des/test_triggers.py`` feeds the same evidence to both
implementations and asserts the same decisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .monitor import Monitor, Window

__all__ = ["Firing", "TriggerState", "check_gate", "evaluate", "fmt"]

NEW_SERVICES = ("ingestion", "enrichment", "storage", "admin")


@dataclass(slots=True)
class Firing:
    trigger: str
    evidence: str


@dataclass
class TriggerState:
    since_s: dict[int, float] = field(default_factory=dict)


def _measure(trigger: Any, window: Window, monitor: Monitor) -> tuple[float | None, str]:
    name = trigger.name
    if name == "error_rate":
        return window.new_error_rate, "new pipeline's error rate"
    if name == "perf_drop":
        return window.perf_drop(), "new p95 slower than legacy by"
    if name == "loss":
        return float(monitor.model.books.overdue(monitor.now_s(), trigger.window)), \
            f"events not stored within the {trigger.window:g} s window"
    if name == "inconsistent":
        return float(window.inconsistent()), "events stored inconsistently"
    raise AssertionError(name)


def evaluate(triggers: list[Any], monitor: Monitor, state: TriggerState) -> Firing | None:
    """The first trigger whose condition has held for its ``for:`` duration, if any."""
    now = monitor.now_s()
    for i, trigger in enumerate(triggers):
        if trigger.name == "service_unavailable":
            watched = trigger.services or list(NEW_SERVICES)
            last = monitor.ticks[-1] if monitor.ticks else None
            down = [s for s in watched if last is not None and not last.healthy.get(s, False)]
            fired = bool(down)
            if fired:
                evidence = f"unavailable: {', '.join(down)}"
        else:
            window = monitor.window(trigger.window) if trigger.name != "loss" else None
            measured, what = _measure(trigger, window, monitor)  # type: ignore[arg-type]
            fired = measured is not None and trigger.threshold.holds(measured)
            if fired and trigger.name == "loss":  # a count: "4 events not stored within ..."
                evidence = (f"{fmt(trigger.threshold, measured)} {what} "
                            f"(trigger: {trigger.threshold.text})")
            elif fired:
                evidence = (f"{what} {fmt(trigger.threshold, measured)} "
                            f"(trigger: {trigger.threshold.text}, window {trigger.window:g} s)")
        if not fired:
            state.since_s.pop(i, None)
            continue
        since = state.since_s.setdefault(i, now)
        if now - since >= trigger.for_:
            return Firing(trigger.name, evidence)
    return None


def check_gate(gate: list[Any], window: Window) -> Firing | None:
    """A traffic step's gate over the step's hold: every threshold must hold."""
    for threshold in gate:
        metric = threshold.metric
        measured: float | None
        if metric == "error_rate":
            measured = window.new_error_rate
        elif metric.startswith("p") and metric != "perf_drop":
            p = window.p95_ms(("legacy", "new"))
            measured = None if p is None else p / 1000
        elif metric == "perf_drop":
            measured = window.perf_drop()
        elif metric == "availability":
            span = max(1e-9, window.end_s - window.start_s)
            measured = 1.0 - window.stalled_seconds / span
        else:
            continue
        if measured is not None and not threshold.holds(measured):
            return Firing("gate", f"gate {threshold.text} failed: measured "
                                  f"{fmt(threshold, measured)}")
    return None


def fmt(threshold: Any, value: float | None) -> str:
    if value is None:
        return "n/a"
    m = threshold.metric
    if m.startswith("p") and m != "perf_drop":
        return f"{value * 1000:.1f} ms"
    if m in ("error_rate", "availability", "perf_drop"):
        return f"{value * 100:.2f}%"
    return f"{value:g}"
