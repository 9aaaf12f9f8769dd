"""Total accounting of events, in the manner of Jepsen's total-queue checker.

Every event the fake Home Assistant sent to a subscriber (the ledger) must be in production
exactly once, as it was sent. An event is its key, (entity_id, time_fired): also InfluxDB's point
key. Home Assistant's context id is a cause shared by every change one action makes, so it never
identifies an event; it only helps explain a point stored under the wrong time. Against that:

- lost: in the ledger, not in production: sent to a subscriber and dropped, or fired while
  nobody was subscribed and not recovered from Home Assistant's history;
- duplicated: more than one production point carries the event's key, or the ledger shows it
  delivered twice to one connection, or it was written twice: by both paths (their stamps on
  one point), or by one (its own write count), since InfluxDB merges the second write;
- unexpected: in production, not in the ledger (the pipeline invented an event);
- inconsistent: stored, but entity, state or time_fired differ from what was sent — in
  production, or in shadow (where the new pipeline mirrors legacy's writes), or between the two;
  or stored by the wrong path, or in the wrong database, or missing from shadow (`writes`).

Events fired while nobody was subscribed (a restart of Home Assistant or of a client, a crash)
count like every other (DESIGN.md: every state change Home Assistant made is in production
exactly once): Home Assistant never replays them, but its recorder keeps them, and the new
pipeline reads them back. A path that does not (the legacy monolith) loses them, and the
finding says so. ``unsubscribed`` counts them, ``recovered`` those that reached production.

Latency is time_fired -> stored_at per path; events read back from history (``recovered``)
are measured apart, their gap being in it.

Each finding names the event, the phase in force at its time_fired and the path (the pipeline
that owned it then), so a failure says where to look, not only "failed".
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from harness.results import Counts, EventFinding, Findings, LatencyStats
from pipeline.common.events import EventKey
from pipeline.common.ha_history import is_recovered
from pipeline.common.routing import RoutingTable
from simulators.home_assistant.ledger import Ledger, LedgerEntry
from simulators.home_assistant.timefmt import iso_from_ns

from . import writes
from .stored import StoredPoints
from .writes import Rewrites

__all__ = ["Accounting", "account", "latency_stats", "percentile"]

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

    # Called with no arguments; ``...`` because callers' lambdas bind loop values as
    # defaults (``lambda entry=entry: ...``), which mypy cannot match to ``Callable[[], ...]``.
    def add(self, make: Callable[..., EventFinding]) -> None:
        self.total += 1
        if len(self) < self.cap:
            self.append(make())


def account(ledger: Ledger, production: StoredPoints, shadow: StoredPoints | None, *,
            phase_of: PhaseOf, owner_of: OwnerOf, cap: int = 200,
            table: RoutingTable | None = None,
            rewrites: dict[str, Rewrites] | None = None) -> Accounting:
    """``table``: the routing table the run used, to judge who wrote each point and what
    belongs in shadow (without it, those checks are skipped); ``rewrites``: each path's own
    count of keys it wrote again."""
    by_key: dict[EventKey, LedgerEntry] = {}
    unsubscribed = 0
    entry: LedgerEntry | None  # reused below for by_key.get(key)
    for entry in ledger:
        by_key.setdefault(entry.key, entry)
        if not entry.connections:
            unsubscribed += 1

    def finding(entry: LedgerEntry, path: str | None = None, detail: str = "") -> EventFinding:
        return EventFinding(entity_id=entry.entity_id, time_fired=iso_from_ns(entry.time_fired_ns),
                            context_id=entry.context_id, phase=phase_of(entry.time_fired_ns),
                            path=path or owner_of(entry.entity_id, entry.time_fired_ns),
                            detail=detail)

    def stray(points: StoredPoints, i: int, path: str, detail: str) -> EventFinding:
        return EventFinding(entity_id=points.entity_ids[i],
                            time_fired=iso_from_ns(points.times_ns[i]),
                            context_id=points.context_ids[i], phase=phase_of(points.times_ns[i]),
                            path=path, detail=detail)

    lost, duplicated = _Capped(cap), _Capped(cap)
    unexpected, inconsistent = _Capped(cap), _Capped(cap)
    latency: dict[str, list[float]] = {}

    prod_keys = [production.key(i) for i in range(len(production))]
    prod_count = Counter(prod_keys)
    prod_state: dict[EventKey, str] = {}
    # A point whose key Home Assistant never fired may still be one of its events stored at the
    # wrong time (processing time as point time, FAILURE_MODES.md #11): the same entity under
    # the same context. Such a point is reported as that event stored inconsistently.
    misplaced: dict[EventKey, tuple[int, LedgerEntry]] = {}
    siblings = _Siblings(by_key, prod_count)
    for i, key in enumerate(prod_keys):
        entry = by_key.get(key)
        writer = production.writers[i] or "?"
        if entry is None and not ledger.judges(production.times_ns[i]):
            continue  # outside the books (a live run: before the pipeline subscribed)
        if entry is None:
            sibling = siblings.claim(production, i)
            if sibling is not None:
                misplaced[sibling.key] = (i, sibling)
                inconsistent.add(lambda sibling=sibling, writer=writer, i=i: finding(
                    sibling, writer, f"production: {_mismatch(sibling, production, i)}"))
            else:
                unexpected.add(lambda i=i, writer=writer: stray(
                    production, i, writer, "in production, never sent by Home Assistant"))
            continue
        prod_state[key] = production.states[i]
        problem = _mismatch(entry, production, i)
        if problem:
            inconsistent.add(lambda entry=entry, writer=writer, problem=problem:
                             finding(entry, writer, f"production: {problem}"))
        stored_at = production.stored_at_ns[i]
        if stored_at is not None:
            ms = (stored_at - production.times_ns[i]) / 1e6
            if is_recovered(production.context_ids[i]):
                latency.setdefault("recovered", []).append(ms)  # its gap is in it: apart
            else:
                latency.setdefault(writer, []).append(ms)
                latency.setdefault("production", []).append(ms)  # every live path together

    for key, n in prod_count.items():
        if n > 1 and key in by_key:
            entry = by_key[key]
            duplicated.add(lambda entry=entry, n=n: finding(entry, detail=f"stored {n} times"))
    # Written twice under one point key, InfluxDB keeps one point: a client that subscribed
    # twice is only visible at the source, where the ledger lists it once per subscription.
    for key, entry in by_key.items():
        if len(entry.connections) > len(set(entry.connections)) and prod_count[key] <= 1:
            twice = Counter(entry.connections).most_common(1)[0]
            duplicated.add(lambda entry=entry, twice=twice: finding(
                entry, detail=f"delivered {twice[1]} times to connection {twice[0]} "
                              "(it subscribed more than once): the pipeline receives every "
                              "event twice"))

    # Who wrote each point, and how often (see `writes`).
    for entry, path, detail in writes.written_by_both(production, by_key):
        duplicated.add(lambda entry=entry, path=path, detail=detail: finding(entry, path, detail))
    rewrite_total, named = writes.rewritten(rewrites or {}, by_key)
    for entry, path, detail in named:
        duplicated.add(lambda entry=entry, path=path, detail=detail: finding(entry, path, detail))
    duplicated.total += max(0, rewrite_total - len(named))  # counted by the writer, unnamed
    if table is not None:
        for entry, path, detail in writes.misowned(production, by_key, table):
            inconsistent.add(lambda entry=entry, path=path, detail=detail:
                             finding(entry, path, detail))

    recovered = 0
    for key, entry in by_key.items():
        if key in prod_count or key in misplaced:
            if not entry.connections:
                recovered += 1
            continue
        if entry.connections:
            lost.add(lambda entry=entry: finding(
                entry, detail=f"sent to {', '.join(dict.fromkeys(entry.connections))}, "
                              "not in production"))
        else:
            lost.add(lambda entry=entry: finding(
                entry, detail="fired while nobody was subscribed, not recovered"))

    stored_shadow = 0
    if shadow is not None:
        shadow_keys = [shadow.key(i) for i in range(len(shadow))]
        stored_shadow = len(set(shadow_keys))
        shadow_siblings = _Siblings(by_key, Counter(shadow_keys))
        for i, key in enumerate(shadow_keys):
            entry = by_key.get(key)
            if entry is None and not ledger.judges(shadow.times_ns[i]):
                continue
            if entry is None:
                sibling = shadow_siblings.claim(shadow, i)
                if sibling is not None:
                    inconsistent.add(lambda sibling=sibling, i=i: finding(
                        sibling, "shadow", f"shadow: {_mismatch(sibling, shadow, i)}"))
                else:
                    unexpected.add(lambda i=i: stray(
                        shadow, i, "shadow", "in shadow, never sent by Home Assistant"))
                continue
            problem = _mismatch(entry, shadow, i)
            if not problem and key in prod_state and prod_state[key] != shadow.states[i]:
                problem = (f"state {prod_state[key]!r} in production but "
                           f"{shadow.states[i]!r} in shadow")
            if problem:
                inconsistent.add(lambda entry=entry, problem=problem:
                                 finding(entry, "shadow", f"shadow: {problem}"))
            stored_at = shadow.stored_at_ns[i]
            if stored_at is not None and not is_recovered(shadow.context_ids[i]):
                latency.setdefault("shadow", []).append((stored_at - shadow.times_ns[i]) / 1e6)
        if table is not None:
            new_path = ledger.connections_of("ingestion")
            for entry, path, detail in (
                    *writes.missing_from_shadow(ledger, by_key, shadow, table),
                    *writes.misplaced_in_shadow(shadow, by_key, table, new_path)):
                inconsistent.add(lambda entry=entry, path=path, detail=detail:
                                 finding(entry, path, detail))

    counts = Counts(
        emitted=len(by_key), expected=len(by_key), unsubscribed=unsubscribed,
        recovered=recovered,
        stored_production=len(prod_count), stored_shadow=stored_shadow, lost=lost.total,
        duplicated=duplicated.total, unexpected=unexpected.total,
        inconsistent=inconsistent.total)
    findings = Findings(lost=list(lost), duplicated=list(duplicated),
                        unexpected=list(unexpected), inconsistent=list(inconsistent))
    truncated = any(x.total > len(x) for x in (lost, duplicated, unexpected, inconsistent))
    return Accounting(counts, findings, {k: latency_stats(v) for k, v in latency.items()},
                      truncated)


class _Siblings:
    """The ledger entry a stray point stands for, if any: an event under the same context that
    is not stored under its own key, with the same entity (the nearest in time: the point's time
    is wrong) or at the same instant (the point's entity is wrong). Each entry is claimed once,
    so two changes one action made to one entity are never both pinned on one point."""

    def __init__(self, by_key: dict[EventKey, LedgerEntry], stored: Counter[EventKey]) -> None:
        self._by_key = by_key
        self._stored = stored
        self._index: dict[str, list[LedgerEntry]] | None = None

    def claim(self, points: StoredPoints, i: int) -> LedgerEntry | None:
        if not points.context_ids[i]:
            return None
        if self._index is None:  # built only when a stray point exists: rare, and then cheap
            self._index = {}
            for key, entry in self._by_key.items():
                if key not in self._stored:
                    self._index.setdefault(entry.context_id, []).append(entry)
        candidates = self._index.get(points.context_ids[i], [])
        entity, t = points.entity_ids[i], points.times_ns[i]
        same_entity = [e for e in candidates if e.entity_id == entity]
        same_time = [e for e in candidates if e.time_fired_ns == t]
        if same_entity:
            best = min(same_entity, key=lambda e: abs(e.time_fired_ns - t))
        elif len(same_time) == 1:
            best = same_time[0]
        else:
            return None
        candidates.remove(best)
        return best


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
