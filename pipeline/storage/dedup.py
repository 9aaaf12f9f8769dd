"""Recently accepted event keys ((entity_id, time_fired)), to count duplicate deliveries.

Duplicates are stored anyway (a point keyed by series + time_fired overwrites itself), so this
is bookkeeping, not a filter: the count is what tells a forwarder's resend after a crash
between 2xx and ack (a few, once) from a double subscription (every event, twice;
FAILURE_MODES.md #6). Bounded: it remembers the last ``capacity`` ids only, and nothing
survives a restart of storage.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from pipeline.common.events import EventKey

__all__ = ["RecentIds"]


class RecentIds:
    """An LRU set of event keys (never context ids: one action's changes share a context)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._ids: OrderedDict[EventKey, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, key: object) -> bool:
        return key in self._ids

    def record(self, keys: Iterable[EventKey]) -> int:
        """Remember ``keys``; return how many of them were already remembered."""
        ids = self._ids
        seen = 0
        for key in keys:
            if key in ids:
                ids.move_to_end(key)
                seen += 1
            else:
                ids[key] = None
                if len(ids) > self.capacity:
                    ids.popitem(last=False)
        return seen
