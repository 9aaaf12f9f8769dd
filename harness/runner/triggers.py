"""Rollback triggers and traffic gates, evaluated on the monitor's evidence as Flagger's
analysis is: continuously while the migration is in progress, each with its own window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.checks.writes import owner_at
from harness.scenario.model import Threshold, Trigger
from pipeline.common.events import EventKey, describe_key
from simulators.home_assistant.ledger import Ledger

from .monitor import Monitor, Window

NEW_SERVICES = ("ingestion", "enrichment", "storage", "admin")


@dataclass(slots=True)
class Firing:
    trigger: str  # the trigger's name, or "gate"
    evidence: str  # measured against threshold, in words


@dataclass
class TriggerState:
    """Per-trigger memory: since when its condition has held (for ``for:``)."""

    since_s: dict[int, float] = field(default_factory=dict)
    loss_cursor: int = 0  # ledger position up to which loss has been checked
    pending: dict[EventKey, int] = field(default_factory=dict)  # event key -> its time_fired
    shadow_cursor: int = 0  # the same for shadow completeness
    shadow_pending: dict[EventKey, str] = field(default_factory=dict)  # key -> its connection


def _measure(trigger: Trigger, window: Window, monitor: Monitor, ledger: Ledger,
             state: TriggerState) -> tuple[float | None, str, str]:
    """(measured, what it is, the first offending event in words or "")."""
    name = trigger.name
    if name == "error_rate":
        return window.new_error_rate, "new pipeline's error rate", ""
    if name == "perf_drop":
        judged = window.latency_judgement()
        return window.perf_drop(), "new p95 slower than legacy by", \
            judged.summary() if judged is not None else ""
    if name == "loss":
        late = overdue(monitor, ledger, state, grace_s=trigger.window)
        first = min(state.pending.items(), key=lambda kv: kv[1], default=None)
        return float(late), f"events not stored within the {trigger.window:g} s window", \
            describe_key(first[0]) if first else ""
    if name == "inconsistent":
        # The first offender goes into the evidence: a rollback must say which point and why.
        bad = inconsistent_points(window, monitor, ledger) + missing_from_shadow(
            monitor, ledger, state, grace_s=trigger.window)
        return float(len(bad)), "events stored inconsistently", bad[0] if bad else ""
    raise AssertionError(name)


def overdue(monitor: Monitor, ledger: Ledger, state: TriggerState, grace_s: float) -> int:
    """Events sent to a subscriber more than ``grace_s`` ago that production still lacks."""
    now_ns = monitor.started_ns + int(monitor.now_s() * 1e9)
    due_ns = now_ns - int(grace_s * 1e9)
    end = len(ledger)
    i = state.loss_cursor
    while i < end:
        entry = ledger[i]
        if entry.time_fired_ns > due_ns:
            break
        if entry.connections:
            state.pending[entry.key] = entry.time_fired_ns
        i += 1
    state.loss_cursor = i
    for key in [k for k in state.pending if k in monitor.production_keys]:
        del state.pending[key]
    return len(state.pending)


def missing_from_shadow(monitor: Monitor, ledger: Ledger, state: TriggerState,
                        grace_s: float) -> list[str]:
    """Events legacy owned while shadow was on, sent to the new path more than ``grace_s``
    ago on a connection still open, that the shadow database still lacks. (An event whose
    connection has closed since is the gap recovery's to bring back: the final accounting
    judges it.) Needs the readers' names in the ledger (the fake Home Assistant's)."""
    table = monitor.table()
    new_path = ledger.connections_of("ingestion")
    if table is None or not new_path:
        return []
    due_ns = monitor.started_ns + int((monitor.now_s() - grace_s) * 1e9)
    end = len(ledger)
    i = state.shadow_cursor
    while i < end:
        entry = ledger[i]
        if entry.time_fired_ns > due_ns:
            break
        t = entry.time_fired_ns
        via = next((c for c in entry.connections if c in new_path), None)
        if via and table.shadow_enabled_at(t) and table.owner(entry.entity_id, t) == "legacy":
            state.shadow_pending[entry.key] = via
        i += 1
    state.shadow_cursor = i
    closed = {r.connection for r in ledger.connections if r.what == "closed"}
    for key in [k for k, via in state.shadow_pending.items()
                if k in monitor.shadow_states or via in closed]:
        del state.shadow_pending[key]
    return [f"{describe_key(key)} (shadow): missing {grace_s:g} s after it was sent to the "
            f"new path (owned by {owner_at(table, key.entity_id, key.time_fired_ns)[1]})"
            for key in sorted(state.shadow_pending, key=lambda k: k.time_fired_ns)]


def inconsistent_points(window: Window, monitor: Monitor, ledger: Ledger) -> list[str]:
    """Points in the window whose state differs from what Home Assistant sent, or (shadow)
    from what production holds for the same event, or that sit in the wrong place: written by
    a path that did not own the event, by both paths, or in shadow when the event belonged in
    production; each described in words."""
    table = monitor.table()
    bad = []
    for point in window.points:
        entry = ledger.find(point.key)
        event = describe_key(point.key)
        if entry is None and not ledger.judges(point.key.time_fired_ns):
            continue  # outside the books: fired before the pipeline subscribed
        if entry is None:
            bad.append(f"{event} ({point.path}): never sent by Home Assistant")
            continue
        sent = "" if entry.state is None else entry.state
        if point.written_by_both:
            bad.append(f"{event} ({point.path}): written by legacy and by new")
        if table is not None:
            owner, words = owner_at(table, entry.entity_id, entry.time_fired_ns)
            if point.path in ("legacy", "new") and point.path != owner:
                bad.append(f"{event}: written by {point.path}, owned by {words}")
            elif point.path == "shadow" and not table.shadow_enabled_at(entry.time_fired_ns):
                bad.append(f"{event} (shadow): written while shadow was off")
            elif point.path == "shadow" and owner == "new":
                bad.append(f"{event} (shadow): owned by {words}, belongs in production")
        if point.state != sent:
            bad.append(f"{event} ({point.path}): state {point.state!r}, sent {sent!r}")
        elif point.path == "shadow" and point.key in monitor.production_states \
                and monitor.production_states[point.key] != point.state:
            bad.append(f"{event} (shadow): {point.state!r}, production "
                       f"{monitor.production_states[point.key]!r}")
    return bad


def evaluate(triggers: list[Trigger], monitor: Monitor, ledger: Ledger,
             state: TriggerState) -> Firing | None:
    """The first trigger whose condition has held for its ``for:`` duration, if any."""
    now = monitor.now_s()
    for i, trigger in enumerate(triggers):
        window = monitor.window(trigger.window)
        if trigger.name == "service_unavailable":
            watched = trigger.services or list(NEW_SERVICES)
            down = [s for s in watched if monitor.ticks and
                    not monitor.ticks[-1].healthy.get(s, False)]
            fired, evidence = bool(down), f"unavailable: {', '.join(down)}"
        else:
            assert trigger.threshold is not None
            measured, what, first = _measure(trigger, window, monitor, ledger, state)
            fired = measured is not None and trigger.threshold.holds(measured)
            # perf_drop's third value is the judge's evidence, quoted beside the figure
            detail = f" ({first})" if trigger.name == "perf_drop" and first else ""
            first = "" if detail else first
            if trigger.name == "loss":  # a count of events: "4 events not stored within ..."
                evidence = (f"{_fmt(trigger.threshold, measured)} {what} "
                            f"(trigger: {trigger.threshold.text})")
            else:
                evidence = (f"{what} {_fmt(trigger.threshold, measured)}{detail} "
                            f"(trigger: {trigger.threshold.text}, window {trigger.window:g} s)")
            evidence += f"; first: {first}" if first else ""
        if not fired:
            state.since_s.pop(i, None)
            continue
        since = state.since_s.setdefault(i, now)
        if now - since >= trigger.for_:
            return Firing(trigger.name, evidence)
    return None


def check_gate(gate: list[Threshold], window: Window) -> Firing | None:
    """A traffic step's gate over the step's hold: every threshold must hold."""
    for threshold in gate:
        metric, detail = threshold.metric, ""
        if metric == "error_rate":
            measured: float | None = window.new_error_rate  # the canary's own errors
        elif metric.startswith("p") and metric != "perf_drop":
            p = window.p95_ms(("legacy", "new"))
            measured = None if p is None else p / 1000
        elif metric == "perf_drop":
            measured = window.perf_drop()
            judged = window.latency_judgement()
            detail = f" ({judged.summary()})" if judged is not None else ""
        elif metric == "availability":
            span = max(1e-9, window.end_s - window.start_s)
            measured = 1.0 - window.stalled_seconds / span
        else:
            continue  # loss, consistency: judged by triggers and checks, not per step
        if measured is not None and not threshold.holds(measured):
            return Firing("gate", f"gate {threshold.text} failed: measured "
                                  f"{_fmt(threshold, measured)}{detail}")
    return None


def _fmt(threshold: Threshold, value: float | None) -> str:
    if value is None:
        return "n/a"
    m = threshold.metric
    if m.startswith("p") and m != "perf_drop":
        return f"{value * 1000:.1f} ms"
    if m in ("error_rate", "availability", "perf_drop"):
        return f"{value * 100:.2f}%"
    return f"{value:g}"
