"""Issue 13: the monolith misreads the routing table's percentage, and both paths write.

A change to legacy's ownership rule compares the entity's bucket (0..9,999) with
``new_percent`` itself instead of ``new_percent`` scaled to buckets: at 50% it hands the new
pipeline the entities of buckets 0..49 only and keeps writing the rest, while the new pipeline
writes its true half. Nothing is lost and every point holds what Home Assistant sent: InfluxDB
merges the two writes of each such point silently. Caught only by who wrote what: both
writers' stamps on one point ("written by legacy and by new") and the ownership check
("written by legacy, owned by new at 50%").

Run in legacy's place: ``python -m tests.mutants.m19_legacy_percent_unscaled``.
"""

from __future__ import annotations

from pipeline.common.routing import RoutingTable, bucket_of
from pipeline.legacy.__main__ import main


def owner_unscaled(self: RoutingTable, entity_id: str, time_fired_ns: int) -> str:
    entry = self.entry_at(time_fired_ns)
    if entry is None:
        return "legacy"
    return "new" if bucket_of(entity_id) < entry.new_percent else "legacy"  # BUG: not * 100


RoutingTable.owner = owner_unscaled  # type: ignore[assignment,method-assign]

if __name__ == "__main__":
    main()
