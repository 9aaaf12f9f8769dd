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
from pipeline.common.ha_history import recovered_rows
from pipeline.common.routing import RoutingTable
from simulators.home_assistant.ledger import Ledger, LedgerColumns, LedgerEntry
from simulators.home_assistant.timefmt import iso_from_ns

from . import writes
from .bulk import collector_paused
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


def latency_stats(values_ms: list[float], acked: int | None = None) -> LatencyStats:
    values_ms.sort()
    return LatencyStats(count=len(values_ms), p50_ms=percentile(values_ms, 50),
                        p95_ms=percentile(values_ms, 95), p99_ms=percentile(values_ms, 99),
                        max_ms=values_ms[-1] if values_ms else 0.0, acked=acked)


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
    count of keys it wrote again.

    It works on columns and ledger rows (a verdict reads millions of points): a ledger entry
    is made only for an event a finding names."""
    with collector_paused():  # see bulk.py
        return _account(ledger, production, shadow, phase_of=phase_of, owner_of=owner_of,
                        cap=cap, table=table, rewrites=rewrites)


def _account(ledger: Ledger, production: StoredPoints, shadow: StoredPoints | None, *,
             phase_of: PhaseOf, owner_of: OwnerOf, cap: int,
             table: RoutingTable | None, rewrites: dict[str, Rewrites] | None) -> Accounting:
    books = ledger.columns()
    first = books.first
    unsubscribed_sets = {s for s, conns in enumerate(books.connection_sets) if not conns}
    unsubscribed_rows = ([j for j, s in enumerate(books.connection_set) if s in unsubscribed_sets]
                         if unsubscribed_sets else [])

    def finding(row: int, path: str | None = None, detail: str = "") -> EventFinding:
        entry = ledger[row]
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

    prod_keys = list(zip(production.entity_ids, production.times_ns, strict=True))
    prod_count = Counter(prod_keys)
    prod_rows = list(map(first.get, prod_keys))
    # A point whose key Home Assistant never fired may still be one of its events stored at the
    # wrong time (processing time as point time, FAILURE_MODES.md #11): the same entity under
    # the same context. Such a point is reported as that event stored inconsistently.
    misplaced: dict[tuple[str, int], int] = {}
    siblings = _Siblings(ledger, books, prod_count)
    for i in _odd_points(production, prod_rows, books):
        row = prod_rows[i]
        writer = production.writers[i] or "?"
        if row is None and not ledger.judges(production.times_ns[i]):
            continue  # outside the books (a live run: before the pipeline subscribed)
        if row is None:
            sibling = siblings.claim(production, i)
            if sibling is not None:
                misplaced[_key(books, sibling)] = sibling
                inconsistent.add(lambda sibling=sibling, writer=writer, i=i: finding(
                    sibling, writer, f"production: {_mismatch(ledger[sibling], production, i)}"))
            else:
                unexpected.add(lambda i=i, writer=writer: stray(
                    production, i, writer, "in production, never sent by Home Assistant"))
            continue
        problem = _mismatch(ledger[row], production, i)
        inconsistent.add(lambda row=row, writer=writer, problem=problem:
                         finding(row, writer, f"production: {problem}"))
    latency = _latencies(production, prod_rows, by_writer=True)

    for key, n in prod_count.items():
        if n > 1 and (row := first.get(key)) is not None:
            duplicated.add(lambda row=row, n=n: finding(row, detail=f"stored {n} times"))
    # Written twice under one point key, InfluxDB keeps one point: a client that subscribed
    # twice is only visible at the source, where the ledger lists it once per subscription.
    twice_sets = {s for s, conns in enumerate(books.connection_sets)
                  if len(conns) > len(set(conns))}
    if twice_sets:
        for key, row in first.items():
            if books.connection_set[row] in twice_sets and prod_count[key] <= 1:
                conns = books.connection_sets[books.connection_set[row]]
                twice = Counter(conns).most_common(1)[0]
                duplicated.add(lambda row=row, twice=twice: finding(
                    row, detail=f"delivered {twice[1]} times to connection {twice[0]} "
                                "(it subscribed more than once): the pipeline receives every "
                                "event twice"))

    # Who wrote each point, and how often (see `writes`).
    for row, path, detail in writes.written_by_both(production, prod_rows):
        duplicated.add(lambda row=row, path=path, detail=detail: finding(row, path, detail))
    rewrite_total, named = writes.rewritten(rewrites or {}, first)
    for row, path, detail in named:
        duplicated.add(lambda row=row, path=path, detail=detail: finding(row, path, detail))
    duplicated.total += max(0, rewrite_total - len(named))  # counted by the writer, unnamed
    if table is not None:
        for row, path, detail in writes.misowned(production, prod_rows, table):
            inconsistent.add(lambda row=row, path=path, detail=detail:
                             finding(row, path, detail))

    absent = first.keys() - prod_count.keys() - misplaced.keys()
    for row in sorted(first[key] for key in absent):  # in the order they fired
        conns = books.connection_sets[books.connection_set[row]]
        if conns:
            lost.add(lambda row=row, conns=conns: finding(
                row, detail=f"sent to {', '.join(dict.fromkeys(conns))}, not in production"))
        else:
            lost.add(lambda row=row: finding(
                row, detail="fired while nobody was subscribed, not recovered"))
    recovered = sum(1 for j in unsubscribed_rows
                    if first[_key(books, j)] == j and _key(books, j) not in absent)

    stored_shadow = 0
    if shadow is not None:
        shadow_keys = list(zip(shadow.entity_ids, shadow.times_ns, strict=True))
        shadow_count = Counter(shadow_keys)
        stored_shadow = len(shadow_count)
        shadow_rows = list(map(first.get, shadow_keys))
        shadow_siblings = _Siblings(ledger, books, shadow_count)
        prod_state = dict(zip(prod_keys, production.states, strict=True))
        for i in _odd_points(shadow, shadow_rows, books, prod_state):
            row = shadow_rows[i]
            if row is None and not ledger.judges(shadow.times_ns[i]):
                continue
            if row is None:
                sibling = shadow_siblings.claim(shadow, i)
                if sibling is not None:
                    inconsistent.add(lambda sibling=sibling, i=i: finding(
                        sibling, "shadow", f"shadow: {_mismatch(ledger[sibling], shadow, i)}"))
                else:
                    unexpected.add(lambda i=i: stray(
                        shadow, i, "shadow", "in shadow, never sent by Home Assistant"))
                continue
            problem = _mismatch(ledger[row], shadow, i)
            if not problem:
                problem = (f"state {prod_state[shadow_keys[i]]!r} in production but "
                           f"{shadow.states[i]!r} in shadow")
            inconsistent.add(lambda row=row, problem=problem:
                             finding(row, "shadow", f"shadow: {problem}"))
        latency |= _latencies(shadow, shadow_rows, by_writer=False)
        if table is not None:
            new_path = ledger.connections_of("ingestion")
            for row, path, detail in (
                    *writes.missing_from_shadow(ledger, books, shadow, table),
                    *writes.misplaced_in_shadow(shadow, shadow_rows, books, table, new_path)):
                inconsistent.add(lambda row=row, path=path, detail=detail:
                                 finding(row, path, detail))

    counts = Counts(
        emitted=len(first), expected=len(first), unsubscribed=len(unsubscribed_rows),
        recovered=recovered,
        stored_production=len(prod_count), stored_shadow=stored_shadow, lost=lost.total,
        duplicated=duplicated.total, unexpected=unexpected.total,
        inconsistent=inconsistent.total)
    findings = Findings(lost=list(lost), duplicated=list(duplicated),
                        unexpected=list(unexpected), inconsistent=list(inconsistent))
    truncated = any(x.total > len(x) for x in (lost, duplicated, unexpected, inconsistent))
    return Accounting(counts, findings, latency, truncated)


def _key(books: LedgerColumns, row: int) -> tuple[str, int]:
    return books.entity_ids[row], books.times_ns[row]


def _odd_points(points: StoredPoints, rows: list[int | None], books: LedgerColumns,
                other: dict[tuple[str, int], str] | None = None) -> list[int]:
    """The points that need a closer look, in their order: never sent under their key, or
    stored with another state than was sent (a point found by its key has the entity and the
    time right), or (``other``: production's states) with another state than production's."""
    sent = books.states
    odd = [i for i, (row, state) in enumerate(zip(rows, points.states, strict=True))
           if row is None or state != sent[row]]
    if other is not None:
        keys = zip(points.entity_ids, points.times_ns, strict=True)
        odd += [i for i, (key, row, state) in enumerate(zip(keys, rows, points.states,
                                                            strict=True))
                if row is not None and state == sent[row] and other.get(key, state) != state]
        odd.sort()
    return odd


def _latencies(points: StoredPoints, rows: list[int | None], *,
               by_writer: bool) -> dict[str, LatencyStats]:
    """time_fired -> stored of the points of sent events, in ms: per writer and all
    ``production`` together (``by_writer``), else all as ``shadow``; those read back from
    history apart (``recovered``: the gap they were missed in is in them). Stored is InfluxDB's
    204 where the writer recorded it (`StoredPoints.acks`), else the writer's stamp."""
    stored = points.stored_at_ns
    acked: list[bool] = [False] * len(stored)
    if points.acks:
        at = [points.acks.get((w, s)) if s is not None and w else None
              for w, s in zip(points.writers, stored, strict=True)]
        acked = [a is not None for a in at]
        stored = [a if a is not None else s for a, s in zip(at, stored, strict=True)]
    ms: list[float | None] = [
        (end - t) / 1e6 if row is not None and end is not None else None
        for row, end, t in zip(rows, stored, points.times_ns, strict=True)]
    recovered = [i for i in recovered_rows(points.context_ids) if ms[i] is not None]
    live_ms = list(ms)
    for i in recovered:
        live_ms[i] = None
    groups: dict[str, list[int]] = {}
    if by_writer:
        for writer in dict.fromkeys(points.writers):
            groups.setdefault(writer or "?", []).extend(
                i for i, (m, w) in enumerate(zip(live_ms, points.writers, strict=True))
                if m is not None and w == writer)
        groups = {w: v for w, v in groups.items() if v}
        if live := [i for i, m in enumerate(live_ms) if m is not None]:
            groups["production"] = live
        if recovered:
            groups["recovered"] = recovered
    elif live := [i for i, m in enumerate(live_ms) if m is not None]:
        groups["shadow"] = live
    return {name: latency_stats([ms[i] or 0.0 for i in members],
                                acked=sum(acked[i] for i in members) if points.acks else None)
            for name, members in groups.items()}


class _Siblings:
    """The ledger row a stray point stands for, if any: an event under the same context that
    is not stored under its own key, with the same entity (the nearest in time: the point's time
    is wrong) or at the same instant (the point's entity is wrong). Each row is claimed once,
    so two changes one action made to one entity are never both pinned on one point."""

    def __init__(self, ledger: Ledger, books: LedgerColumns,
                 stored: Counter[tuple[str, int]]) -> None:
        self._ledger = ledger
        self._books = books
        self._stored = stored
        self._index: dict[str, list[int]] | None = None

    def claim(self, points: StoredPoints, i: int) -> int | None:
        if not points.context_ids[i]:
            return None
        books = self._books
        if self._index is None:  # built only when a stray point exists: rare, and then cheap
            self._index = {}
            for key in books.first.keys() - self._stored.keys():
                row = books.first[key]
                self._index.setdefault(self._ledger.context_id(row), []).append(row)
            for rows in self._index.values():
                rows.sort()
        candidates = self._index.get(points.context_ids[i], [])
        entity, t = points.entity_ids[i], points.times_ns[i]
        same_entity = [j for j in candidates if books.entity_ids[j] == entity]
        same_time = [j for j in candidates if books.times_ns[j] == t]
        if same_entity:
            best = min(same_entity, key=lambda j: abs(books.times_ns[j] - t))
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
