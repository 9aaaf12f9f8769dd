"""Ownership routing in the model: the append-only table of (effective_from, new_percent,
shadow) entries, each change taking effect ``lead`` seconds after it is announced, and the
share of events each percentage hands to the new pipeline.

The share comes from the fleet itself: the fraction of the scenario's entities whose stable
bucket (``pipeline.common.routing.bucket_of``, the ownership contract both pipelines apply) is
below ``percent * 100``. The fake Home Assistant picks the entity of each change uniformly, so
that fraction is each event's chance of being the new pipeline's.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from pipeline.common.routing import BUCKETS, bucket_of

__all__ = ["Entry", "OwnershipShares", "RoutingPlan"]


@dataclass(frozen=True, slots=True)
class Entry:
    effective_from: float
    new_percent: int
    shadow: bool


class OwnershipShares:
    """percent -> the fraction of the fleet's entities the new pipeline owns at that percent."""

    def __init__(self, entity_ids: list[str]) -> None:
        self._buckets = sorted(bucket_of(e) for e in entity_ids)
        self._cache: dict[int, float] = {}

    def share(self, percent: int) -> float:
        if percent <= 0:
            return 0.0
        if percent >= 100:
            return 1.0
        cached = self._cache.get(percent)
        if cached is None:
            below = bisect.bisect_left(self._buckets, percent * (BUCKETS // 100))
            cached = self._cache[percent] = below / max(1, len(self._buckets))
        return cached


@dataclass
class RoutingPlan:
    lead: float
    entries: list[Entry] = field(default_factory=list)
    _starts: list[float] = field(default_factory=list)

    def entry_at(self, t: float) -> Entry | None:
        i = bisect.bisect_right(self._starts, t)
        return self.entries[i - 1] if i else None

    def current(self) -> Entry:
        return self.entries[-1] if self.entries else Entry(0.0, 0, False)

    def change(self, now: float, *, new_percent: int | None = None,
               shadow: bool | None = None) -> float:
        """Announce a change at ``now``; it takes effect at ``now + lead`` (after the last
        entry). Returns the boundary."""
        last = self.current()
        boundary = max(now + self.lead, last.effective_from + 1e-6)
        entry = Entry(boundary, last.new_percent if new_percent is None else new_percent,
                      last.shadow if shadow is None else shadow)
        self.entries.append(entry)
        self._starts.append(boundary)
        return boundary
