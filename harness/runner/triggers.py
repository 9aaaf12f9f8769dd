"""The runner's side of the rollback triggers and traffic gates: the rules themselves live in
``harness.scenario.rules`` (shared with the simulator); here is the real run's evidence for them,
read from the live monitor (counters scraped, points read back from InfluxDB) and the fake Home
Assistant's ledger, with every offending event named.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.checks.writes import owner_at
from harness.scenario import rules
from harness.scenario.model import Threshold, Trigger
from harness.scenario.rules import Firing
from harness.scenario.rules.evidence import MonitorEvidence
from pipeline.common.events import EventKey, describe_key
from simulators.home_assistant.ledger import Ledger

from .monitor import Monitor, Window

__all__ = ["Firing", "RunEvidence", "TriggerState", "check_gate", "evaluate"]


@dataclass
class TriggerState(rules.TriggerState):
    """The rules' memory, plus the ledger cursors that let loss and shadow completeness read
    each event once rather than the whole ledger at every tick."""

    loss_cursor: int = 0  # ledger position up to which loss has been checked
    pending: dict[EventKey, int] = field(default_factory=dict)  # event key -> its time_fired
    shadow_cursor: int = 0  # the same for shadow completeness
    shadow_pending: dict[EventKey, str] = field(default_factory=dict)  # key -> its connection


@dataclass
class RunEvidence(MonitorEvidence):
    """``rules.Evidence`` over a real run: the monitor's, plus the ledger's named events."""

    monitor: Monitor
    ledger: Ledger
    state: TriggerState

    def unhealthy(self, services: Sequence[str]) -> list[str]:
        # a stage the pipeline file leaves out is not down: it is not there
        rt = self.monitor.runtime
        return super().unhealthy([s for s in services if rt is None or rt.has(s)])

    def overdue(self, grace_s: float) -> tuple[int, str]:
        late = overdue(self.monitor, self.ledger, self.state, grace_s)
        first = min(self.state.pending.items(), key=lambda kv: kv[1], default=None)
        return late, describe_key(first[0]) if first else ""

    def inconsistent(self, window: rules.WindowEvidence, grace_s: float) -> tuple[int, str]:
        assert isinstance(window, Window)  # the runner's own windows, from window() above
        bad = inconsistent_points(window, self.monitor, self.ledger) + missing_from_shadow(
            self.monitor, self.ledger, self.state, grace_s)
        return len(bad), bad[0] if bad else ""


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
    # Every point of the window, every tick: the words are made only for the bad ones.
    for point in window.points:
        key = point.key
        entry = ledger.find(point.key)
        if entry is None and not ledger.judges(point.key.time_fired_ns):
            continue  # outside the books: fired before the pipeline subscribed
        if entry is None:
            bad.append(f"{describe_key(key)} ({point.path}): never sent by Home Assistant")
            continue
        sent = "" if entry.state is None else entry.state
        if point.written_by_both:
            bad.append(f"{describe_key(key)} ({point.path}): written by legacy and by new")
        if table is not None:
            owner, words = owner_at(table, entry.entity_id, entry.time_fired_ns)
            if point.path in ("legacy", "new") and point.path != owner:
                bad.append(f"{describe_key(key)}: written by {point.path}, owned by {words}")
            elif point.path == "shadow" and not table.shadow_enabled_at(entry.time_fired_ns):
                bad.append(f"{describe_key(key)} (shadow): written while shadow was off")
            elif point.path == "shadow" and owner == "new":
                bad.append(f"{describe_key(key)} (shadow): owned by {words}, belongs in production")
        if point.state != sent:
            bad.append(f"{describe_key(key)} ({point.path}): state {point.state!r}, sent {sent!r}")
        elif point.path == "shadow" and point.key in monitor.production_states \
                and monitor.production_states[point.key] != point.state:
            bad.append(f"{describe_key(key)} (shadow): {point.state!r}, production "
                       f"{monitor.production_states[point.key]!r}")
    return bad


def evaluate(triggers: Sequence[Trigger], monitor: Monitor, ledger: Ledger,
             state: TriggerState) -> Firing | None:
    """The first trigger whose condition has held for its ``for:`` duration, if any."""
    return rules.evaluate(triggers, RunEvidence(monitor, ledger, state), state)


def check_gate(gate: Sequence[Threshold], window: Window) -> Firing | None:
    """A traffic step's gate over the step's hold: every threshold must hold."""
    return rules.check_gate(gate, window)
