"""Total accounting of events, in the manner of Jepsen's total-queue checker.

Every event the fake Home Assistant sent to a subscriber (the ledger) must be in production
exactly once, as it was sent. Against that:

- lost: in the ledger (sent to a subscriber), not in production;
- duplicated: more than one production point carries the event id;
- unexpected: in production, not in the ledger (the pipeline invented or rewrote an id);
- inconsistent: stored, but entity, state or time_fired differ from what was sent — in
  production, or in shadow (where the new pipeline mirrors legacy's writes), or between the two.

Events fired while nobody was subscribed are counted apart ("unsubscribed"): Home Assistant
never replays them, so no pipeline could have stored them.

Each finding names the event, the phase in force at its time_fired and the path (the pipeline
that owned it then), so a failure says where to look, not only "failed".
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from harness.results import Counts, EventFinding, Findings, LatencyStats
from simulators.home_assistant.ledger import Ledger, LedgerEntry
from simulators.home_assistant.timefmt import iso_from_ns

from .stored import StoredPoints

PhaseOf = Callable[[int], str]  # time_fired_ns -> phase name
OwnerOf = Callable[[str, int], str]  # (entity_id, time_fired_ns) -> "legacy" | "new"


@dataclass(slots=True)
class Accounting:
    counts: Counts
    findings: Findings
    latency: dict[str, LatencyStats]
    truncated: bool


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (q in 0..100)."""
    if not sorted_values:
        return 0.0
    rank = math.ceil(q / 100 * len(sorted_values))  # 1-based
    return sorted_values[max(0, min(len(sorted_values), rank) - 1)]


def latency_stats(values_ms: list[float]) -> LatencyStats:
    values_ms.sort()
    return LatencyStats(count=len(values_ms), p50_ms=percentile(values_ms, 50),
                        p95_ms=percentile(values_ms, 95), p99_ms=percentile(values_ms, 99),
                        max_ms=values_ms[-1] if values_ms else 0.0)


class _Capped(list[EventFinding]):
    """A findings list that keeps the first ``cap`` items and counts the rest."""

    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap = cap
        self.total = 0

    def add(self, make: Callable[[], EventFinding]) -> None:
        self.total += 1
        if len(self) < self.cap:
            self.append(make())


def account(ledger: Ledger, production: StoredPoints, shadow: StoredPoints | None, *,
            phase_of: PhaseOf, owner_of: OwnerOf, cap: int = 200) -> Accounting:
    by_id: dict[str, LedgerEntry] = {}
    unsubscribed = 0
    for entry in ledger:
        by_id[entry.event_id] = entry
        if not entry.connections:
            unsubscribed += 1

    def finding(entry: LedgerEntry, path: str | None = None, detail: str = "") -> EventFinding:
        return EventFinding(event_id=entry.event_id, entity_id=entry.entity_id,
                            time_fired=iso_from_ns(entry.time_fired_ns),
                            phase=phase_of(entry.time_fired_ns),
                            path=path or owner_of(entry.entity_id, entry.time_fired_ns),
                            detail=detail)

    lost, duplicated = _Capped(cap), _Capped(cap)
    unexpected, inconsistent = _Capped(cap), _Capped(cap)
    latency: dict[str, list[float]] = {}

    prod_count = Counter(production.event_ids)
    prod_state: dict[str, str] = {}
    for i, event_id in enumerate(production.event_ids):
        entry = by_id.get(event_id)
        writer = production.writers[i] or "?"
        if entry is None:
            unexpected.add(lambda i=i, event_id=event_id, writer=writer: EventFinding(
                event_id=event_id, entity_id=production.entity_ids[i],
                time_fired=iso_from_ns(production.times_ns[i]),
                phase=phase_of(production.times_ns[i]), path=writer,
                detail="in production, never sent by Home Assistant"))
            continue
        prod_state[event_id] = production.states[i]
        problem = _mismatch(entry, production, i)
        if problem:
            inconsistent.add(lambda entry=entry, writer=writer, problem=problem:
                             finding(entry, writer, f"production: {problem}"))
        stored_at = production.stored_at_ns[i]
        if stored_at is not None:
            ms = (stored_at - production.times_ns[i]) / 1e6
            latency.setdefault(writer, []).append(ms)
            latency.setdefault("production", []).append(ms)  # every production path together

    for event_id, n in prod_count.items():
        if n > 1 and event_id in by_id:
            entry = by_id[event_id]
            duplicated.add(lambda entry=entry, n=n: finding(entry, detail=f"stored {n} times"))
    # Written twice under one point key, InfluxDB keeps one point: a client that subscribed
    # twice is only visible at the source, where the ledger lists it once per subscription.
    for event_id, entry in by_id.items():
        if len(entry.connections) > len(set(entry.connections)) and prod_count[event_id] <= 1:
            twice = Counter(entry.connections).most_common(1)[0]
            duplicated.add(lambda entry=entry, twice=twice: finding(
                entry, detail=f"delivered {twice[1]} times to connection {twice[0]} "
                              "(it subscribed more than once): the pipeline receives every event twice"))

    for event_id, entry in by_id.items():
        if entry.connections and event_id not in prod_count:
            lost.add(lambda entry=entry: finding(
                entry, detail=f"sent to {', '.join(dict.fromkeys(entry.connections))}, not in production"))

    stored_shadow = 0
    if shadow is not None:
        stored_shadow = len(set(shadow.event_ids))
        for i, event_id in enumerate(shadow.event_ids):
            entry = by_id.get(event_id)
            if entry is None:
                unexpected.add(lambda i=i, event_id=event_id: EventFinding(
                    event_id=event_id, entity_id=shadow.entity_ids[i],
                    time_fired=iso_from_ns(shadow.times_ns[i]),
                    phase=phase_of(shadow.times_ns[i]), path="shadow",
                    detail="in shadow, never sent by Home Assistant"))
                continue
            problem = _mismatch(entry, shadow, i)
            if not problem and event_id in prod_state and prod_state[event_id] != shadow.states[i]:
                problem = (f"state {prod_state[event_id]!r} in production but "
                           f"{shadow.states[i]!r} in shadow")
            if problem:
                inconsistent.add(lambda entry=entry, problem=problem:
                                 finding(entry, "shadow", f"shadow: {problem}"))
            stored_at = shadow.stored_at_ns[i]
            if stored_at is not None:
                latency.setdefault("shadow", []).append((stored_at - shadow.times_ns[i]) / 1e6)

    counts = Counts(
        emitted=len(by_id), expected=len(by_id) - unsubscribed, unsubscribed=unsubscribed,
        stored_production=len(prod_count), stored_shadow=stored_shadow, lost=lost.total,
        duplicated=duplicated.total, unexpected=unexpected.total,
        inconsistent=inconsistent.total)
    findings = Findings(lost=list(lost), duplicated=list(duplicated),
                        unexpected=list(unexpected), inconsistent=list(inconsistent))
    truncated = any(x.total > len(x) for x in (lost, duplicated, unexpected, inconsistent))
    return Accounting(counts, findings, {k: latency_stats(v) for k, v in latency.items()},
                      truncated)


def _mismatch(entry: LedgerEntry, points: StoredPoints, i: int) -> str:
    """What differs between the ledger entry and stored point ``i``, or ''."""
    problems = []
    if points.entity_ids[i] != entry.entity_id:
        problems.append(f"entity {points.entity_ids[i]!r}, sent {entry.entity_id!r}")
    sent_state = entry.state if entry.state is not None else ""
    if points.states[i] != sent_state:
        problems.append(f"state {points.states[i]!r}, sent {sent_state!r}")
    if points.times_ns[i] != entry.time_fired_ns:
        problems.append(f"time {iso_from_ns(points.times_ns[i])}, fired "
                        f"{iso_from_ns(entry.time_fired_ns)}")
    return "; ".join(problems)
