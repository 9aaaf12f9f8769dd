"""Who wrote each point, and how often: the checks InfluxDB's silent merge would hide.

Three rules of the migration, judged on what was stored (DESIGN.md, "The migration"):

- ownership: a production point is written by its owner, the path the routing table in force
  at its time_fired gives it to; a point written by the other path is a finding ("written by
  new, owned by legacy at 50%"), even when its content is right.
- the shadow: while shadow is on, every event legacy owns is mirrored by the new path into the
  shadow database, once; a shadow point of an event the new path owned (it belongs in
  production), of a time when shadow was off, or of an event the new path was never sent and
  did not read back from history, is in the wrong place.
- one write per event: InfluxDB keeps one point per key and merges a second write into it, so a
  double write is seen only from the writers' own stamps (``legacy_stored_at`` and
  ``new_stored_at`` both on one point: both paths wrote it) and from their own counts of keys
  written again (``rewrites`` in each writer's stats).

Each check yields (ledger row, path, detail) and leaves counting, capping and the words of
the finding to the caller. They work on columns: a verdict reads millions of points.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass

from pipeline.common.events import EventKey
from pipeline.common.ha_history import is_recovered
from pipeline.common.routing import RoutingTable
from simulators.home_assistant.ledger import Ledger, LedgerColumns

from .stored import StoredPoints

__all__ = ["Rewrites", "misowned", "misplaced_in_shadow", "missing_from_shadow",
           "owner_at", "rewritten", "written_by_both"]

Finding = tuple[int, str, str]  # (ledger row, path, detail)
Rows = Sequence[int | None]  # for each stored point, its event's ledger row (None: not sent)


@dataclass(frozen=True, slots=True)
class Rewrites:
    """A writer's own count of keys it wrote again, and the first of them."""

    count: int
    first: tuple[EventKey, ...] = ()


def owner_at(table: RoutingTable, entity_id: str, time_fired_ns: int) -> tuple[str, str]:
    """(owner, in words: "legacy at 50%") by the table in force at time_fired."""
    entry = table.entry_at(time_fired_ns)
    percent = entry.new_percent if entry is not None else 0
    owner = table.owner(entity_id, time_fired_ns)
    return owner, f"{owner} at {percent}%"


def _words(table: RoutingTable, owner: str, time_fired_ns: int) -> str:
    entry = table.entry_at(time_fired_ns)
    return f"{owner} at {entry.new_percent if entry is not None else 0}%"


def misowned(production: StoredPoints, rows: Rows, table: RoutingTable) -> Iterator[Finding]:
    """Production points whose writer is not their owner at their time_fired."""
    owners = table.owners(production.entity_ids, production.times_ns)
    for i, writer, owner in zip(range(len(owners)), production.writers, owners, strict=True):
        if writer != owner and writer in ("legacy", "new") and (row := rows[i]) is not None:
            yield row, writer, (f"production: written by {writer}, owned by "
                                f"{_words(table, owner, production.times_ns[i])}")


def written_by_both(production: StoredPoints, rows: Rows) -> Iterator[Finding]:
    """Production points both writers stamped: each path wrote the event once."""
    stamps = zip(production.legacy_stamps, production.new_stamps, strict=False)
    for i, (legacy, new) in enumerate(stamps):
        if legacy is not None and new is not None and (row := rows[i]) is not None:
            yield row, production.writers[i], (
                f"written by legacy and by new (InfluxDB merged the two writes; "
                f"{production.writers[i]}'s was last)")


def rewritten(rewrites: Mapping[str, Rewrites],
              first: Mapping[tuple[str, int], int]) -> tuple[int, list[Finding]]:
    """Keys a path wrote again, by its own count: (how many in all, the ones it named)."""
    total, named = 0, []
    for path, r in rewrites.items():
        total += r.count
        for key in r.first:
            if (row := first.get(key)) is not None:
                named.append((row, path, f"written again by {path} (its own write count: "
                                         f"{r.count} rewrite(s) in all)"))
    return total, named


def missing_from_shadow(ledger: Ledger, books: LedgerColumns, shadow: StoredPoints,
                        table: RoutingTable) -> Iterator[Finding]:
    """Events legacy owned while shadow was on that the shadow database lacks: the new path
    receives every event (live, or read back from history after a gap), so it must mirror
    each one legacy owns."""
    absent = books.first.keys() - set(zip(shadow.entity_ids, shadow.times_ns, strict=True))
    candidates = [j for j in sorted(books.first[key] for key in absent)  # as they fired
                  if ledger.judges(books.times_ns[j])]
    shadow_on = table.shadow_enabled([books.times_ns[j] for j in candidates])
    candidates = [j for j, on in zip(candidates, shadow_on, strict=True) if on]
    owners = table.owners([books.entity_ids[j] for j in candidates],
                          [books.times_ns[j] for j in candidates])
    for j, owner in zip(candidates, owners, strict=True):
        if owner == "legacy":
            words = _words(table, owner, books.times_ns[j])
            yield j, "shadow", f"shadow: missing (owned by {words}, shadow on)"


def misplaced_in_shadow(shadow: StoredPoints, rows: Rows, books: LedgerColumns,
                        table: RoutingTable,
                        new_path_connections: Collection[str]) -> Iterator[Finding]:
    """Shadow points that do not belong there: of an event the new path owned, of a time when
    shadow was off, or (when the ledger knows the new path's connections) of an event the new
    path was never sent and did not read back from history."""
    sent = [(i, row) for i, row in enumerate(rows) if row is not None]  # unsent: "unexpected"
    owners = table.owners([books.entity_ids[row] for _, row in sent],
                          [books.times_ns[row] for _, row in sent])
    shadow_on = table.shadow_enabled([books.times_ns[row] for _, row in sent])
    reached_new = [any(c in new_path_connections for c in conns)
                   for conns in books.connection_sets]
    for (i, row), owner, on in zip(sent, owners, shadow_on, strict=True):
        t = books.times_ns[row]
        if not on:
            yield row, "shadow", "shadow: written while shadow was off"
        elif owner == "new":
            yield row, "shadow", (f"shadow: owned by {_words(table, owner, t)}, so it belongs "
                                  "in production")
        elif (new_path_connections and not is_recovered(shadow.context_ids[i])
              and not reached_new[books.connection_set[row]]):
            conns = books.connection_sets[books.connection_set[row]]
            yield row, "shadow", (f"shadow: never sent to the new path (sent to "
                                  f"{', '.join(dict.fromkeys(conns))} only)")
