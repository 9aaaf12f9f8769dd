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

Each check yields (ledger entry, path, detail) and leaves counting and capping to the caller.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass

from pipeline.common.events import EventKey
from pipeline.common.ha_history import is_recovered
from pipeline.common.routing import RoutingTable
from simulators.home_assistant.ledger import Ledger, LedgerEntry

from .stored import StoredPoints

__all__ = ["Rewrites", "misowned", "misplaced_in_shadow", "missing_from_shadow",
           "owner_at", "rewritten", "written_by_both"]

Finding = tuple[LedgerEntry, str, str]  # (event, path, detail)


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


def misowned(production: StoredPoints, by_key: Mapping[EventKey, LedgerEntry],
             table: RoutingTable) -> Iterator[Finding]:
    """Production points whose writer is not their owner at their time_fired."""
    for i in range(len(production)):
        entry = by_key.get(production.key(i))
        writer = production.writers[i]
        if entry is None or writer not in ("legacy", "new"):
            continue
        owner, words = owner_at(table, entry.entity_id, entry.time_fired_ns)
        if writer != owner:
            yield entry, writer, f"production: written by {writer}, owned by {words}"


def written_by_both(production: StoredPoints,
                    by_key: Mapping[EventKey, LedgerEntry]) -> Iterator[Finding]:
    """Production points both writers stamped: each path wrote the event once."""
    for i in range(len(production)):
        if production.written_by_both(i) and (entry := by_key.get(production.key(i))):
            yield entry, production.writers[i], (
                f"written by legacy and by new (InfluxDB merged the two writes; "
                f"{production.writers[i]}'s was last)")


def rewritten(rewrites: Mapping[str, Rewrites],
              by_key: Mapping[EventKey, LedgerEntry]) -> tuple[int, list[Finding]]:
    """Keys a path wrote again, by its own count: (how many in all, the ones it named)."""
    total, named = 0, []
    for path, r in rewrites.items():
        total += r.count
        for key in r.first:
            if (entry := by_key.get(key)) is not None:
                named.append((entry, path, f"written again by {path} (its own write count: "
                                           f"{r.count} rewrite(s) in all)"))
    return total, named


def missing_from_shadow(ledger: Ledger, by_key: Mapping[EventKey, LedgerEntry],
                        shadow: StoredPoints, table: RoutingTable) -> Iterator[Finding]:
    """Events legacy owned while shadow was on that the shadow database lacks: the new path
    receives every event (live, or read back from history after a gap), so it must mirror
    each one legacy owns."""
    in_shadow = {shadow.key(i) for i in range(len(shadow))}
    for key, entry in by_key.items():
        t = entry.time_fired_ns
        if key in in_shadow or not ledger.judges(t) or not table.shadow_enabled_at(t):
            continue
        owner, words = owner_at(table, entry.entity_id, t)
        if owner == "legacy":
            yield entry, "shadow", f"shadow: missing (owned by {words}, shadow on)"


def misplaced_in_shadow(shadow: StoredPoints, by_key: Mapping[EventKey, LedgerEntry],
                        table: RoutingTable,
                        new_path_connections: Collection[str]) -> Iterator[Finding]:
    """Shadow points that do not belong there: of an event the new path owned, of a time when
    shadow was off, or (when the ledger knows the new path's connections) of an event the new
    path was never sent and did not read back from history."""
    for i in range(len(shadow)):
        entry = by_key.get(shadow.key(i))
        if entry is None:
            continue  # never sent at all: the accounting's "unexpected"
        t = entry.time_fired_ns
        owner, words = owner_at(table, entry.entity_id, t)
        if not table.shadow_enabled_at(t):
            yield entry, "shadow", "shadow: written while shadow was off"
        elif owner == "new":
            yield entry, "shadow", f"shadow: owned by {words}, so it belongs in production"
        elif (new_path_connections and not is_recovered(shadow.context_ids[i])
              and not any(c in new_path_connections for c in entry.connections)):
            yield entry, "shadow", (f"shadow: never sent to the new path (sent to "
                                    f"{', '.join(dict.fromkeys(entry.connections))} only)")
