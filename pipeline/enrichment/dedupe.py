"""Recently accepted event keys ((entity_id, time_fired) and target), so a batch a sender
re-sends (its ack was lost) is not queued twice. A bounded LRU in memory: after a restart or
beyond the window a duplicate goes through, which is harmless (a redelivered event lands on the
same InfluxDB point); this only saves the extra writes."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable

__all__ = ["RecentIds"]


class RecentIds:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[Hashable, None] = OrderedDict()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add_all(self, keys: Iterable[Hashable]) -> None:
        if self.capacity <= 0:
            return
        for key in keys:
            self._ids[key] = None
            self._ids.move_to_end(key)
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
