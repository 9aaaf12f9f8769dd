"""The fake Home Assistant's recorder: every state each entity had, bounded in memory.

Home Assistant never replays events, but its recorder keeps states, so a client that missed
events (a restart, a crash) reads them back from history (:mod:`.history_api` answers the
question from here). Like the recorder, this one commits in the background: rows younger than
``commit_lag`` are not there yet; and beyond ``max_states`` rows (give or take 2 %) the oldest
go first, as a purge would.
"""

from __future__ import annotations

import bisect
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from .events import StateChange
from .timefmt import iso_from_ns, ns_from_iso

# An indexed row: last_updated, last_changed (None: a removal), state, attributes as JSON (as
# the recorder keeps them). Times stay the states' own ISO strings, parsed only for an answer:
# in the fake's fixed format (microseconds, +00:00) they sort as the times do. Only strings
# and bytes, so the garbage collector never has to walk the rows.
Row = tuple[str, str | None, str, bytes]
_NO_ATTRIBUTES = b"{}"


class _Rows:
    """One entity's rows, sorted by last_updated; ``head`` skips the purged ones."""

    __slots__ = ("head", "keys", "rows")

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.rows: list[Row] = []
        self.head = 0

    def insert(self, row: Row) -> None:
        """Add a row stamped earlier than the last one (a replayed recording), in order."""
        at = bisect.bisect_right(self.keys, row[0], self.head)
        self.keys.insert(at, row[0])
        self.rows.insert(at, row)

    def drop_oldest(self) -> bool:
        """Purge the oldest row; True when none is left."""
        self.head += 1
        if self.head == len(self.rows):
            return True
        if self.head >= 64 and self.head * 2 >= len(self.rows):  # compact now and then
            del self.keys[: self.head]
            del self.rows[: self.head]
            self.head = 0
        return False


@lru_cache(maxsize=4096)
def _epoch_seconds(prefix: str) -> int:
    return int(datetime.fromisoformat(prefix).replace(tzinfo=UTC).timestamp())


def us_from_iso(iso: str) -> int:
    """Microseconds since the epoch of a state timestamp (the fake's own format fast)."""
    if len(iso) == 32 and iso[19] == "." and iso.endswith("+00:00"):
        return _epoch_seconds(iso[:19]) * 1_000_000 + int(iso[20:26])
    return ns_from_iso(iso) // 1000


_YEAR_1000_US = -30_610_224_000 * 1_000_000  # before it, %Y is no longer 4 digits


def _iso(us: int) -> str:
    """A bound in the rows' format (earlier than year 1000: year 1000, before every row)."""
    return iso_from_ns(max(us, _YEAR_1000_US) * 1000)


def _canonical(iso: str) -> str:
    """The timestamp in the fake's fixed format (what the fleet makes is already in it)."""
    if len(iso) == 32 and iso[19] == "." and iso[26:] == "+00:00":
        return iso
    return iso_from_ns(ns_from_iso(iso))


class History:
    """Every state each entity had (what Home Assistant's recorder keeps), bounded.

    Recording is on the path of every event fired, so it only appends the state to a log;
    the per-entity index is built from the log when a question comes (the recorder's commit,
    done lazily): a run nobody asks about history pays almost nothing for it.
    """

    def __init__(self, *, max_states: int = 50_000, commit_lag: float = 1.0,
                 clock_ns: Callable[[], int] = time.time_ns) -> None:
        if max_states < 1 or commit_lag < 0:
            raise ValueError("History: expected max_states >= 1 and commit_lag >= 0")
        self.max_states = max_states
        # Purged a few at a time (1/64 of the bound): cheaper per state than one by one.
        self._purge_above = max_states + max_states // 64
        self.commit_lag = commit_lag
        self._clock_ns = clock_ns
        # Every state recorded, oldest first (the purge order): (entity, state, fired ns).
        self._log: deque[tuple[str, Mapping[str, Any] | None, int]] = deque()
        self._first = 0  # sequence number of _log[0]
        self._indexed = 0  # sequence number of the first entry not yet in _by_entity
        self._by_entity: dict[str, _Rows] = {}
        # Per entity, its last attributes and their JSON: most changes keep the very same
        # attributes dict (a sensor's value moves, its unit does not), so most skip the dump.
        self._last_attributes: dict[str, tuple[Mapping[str, Any], bytes]] = {}

    def __len__(self) -> int:
        return len(self._log)

    def record(self, entity_id: str, state: Mapping[str, Any] | None, fired_ns: int) -> None:
        """Record a state change: the new state, or (None) the entity's removal, which the
        recorder keeps as an empty state at the time it was fired. ``state`` is kept as is:
        it must never be mutated (the fleet's states never are)."""
        log = self._log
        log.append((entity_id, state, fired_ns))
        if len(log) > self._purge_above:
            self._purge()

    def record_changes(self, changes: Iterable[StateChange]) -> None:
        """Record fired changes (as :meth:`record`, one call per batch: this is per event)."""
        log = self._log
        log.extend([(c.entity_id, c.new_state, c.time_fired_ns) for c in changes])
        if len(log) > self._purge_above:
            self._purge()

    def record_states(self, states: Iterable[Mapping[str, Any]]) -> None:
        """Record states as they are (the fleet's states when it starts)."""
        for state in states:
            self.record(state["entity_id"], state, 0)

    def _purge(self) -> None:
        """Drop the oldest states down to ``max_states``."""
        log, by_entity = self._log, self._by_entity
        for _ in range(len(log) - self.max_states):
            entity_id = log.popleft()[0]
            if self._first < self._indexed and by_entity[entity_id].drop_oldest():
                del by_entity[entity_id]
                self._last_attributes.pop(entity_id, None)
            self._first += 1
        self._indexed = max(self._indexed, self._first)

    def _index(self) -> None:
        """Put what was recorded since the last question into the per-entity rows."""
        log = self._log
        fresh = self._first + len(log) - self._indexed
        if not fresh:
            return
        by_entity, last_attributes = self._by_entity, self._last_attributes
        for entity_id, state, fired_ns in itertools.islice(log, len(log) - fresh, None):
            if state is None:
                lu = iso_from_ns(fired_ns)
                row: Row = (lu, None, "", _NO_ATTRIBUTES)
            else:
                updated, changed = state["last_updated"], state["last_changed"]
                lu = _canonical(updated)
                attributes = state["attributes"]
                last = last_attributes.get(entity_id)
                if last is not None and last[0] is attributes:
                    blob = last[1]
                else:
                    blob = orjson.dumps(attributes)
                    last_attributes[entity_id] = (attributes, blob)
                row = (lu, lu if changed == updated else _canonical(changed), state["state"],
                       blob)
            held = by_entity.get(entity_id)
            if held is None:
                held = by_entity[entity_id] = _Rows()
            keys = held.keys
            if not keys or lu >= keys[-1]:
                keys.append(lu)
                held.rows.append(row)
            else:
                held.insert(row)
        self._indexed += fresh

    def oldest_us(self) -> int | None:
        """last_updated of the oldest row held (the recorder's oldest_ts)."""
        self._index()
        heads = [r.keys[r.head] for r in self._by_entity.values()]
        return us_from_iso(min(heads)) if heads else None

    def now_us(self) -> int:
        return self._clock_ns() // 1000

    def committed_until_us(self) -> int:
        """Rows stamped after this are not committed yet."""
        return (self._clock_ns() - int(self.commit_lag * 1e9)) // 1000

    def rows(self, entity_id: str, start_us: int, end_us: int | None,
             with_start: bool) -> tuple[Row | None, list[Row]] | None:
        """The committed row in force before ``start_us`` (if asked) and the rows in
        ``(start_us, end_us)``; None for an entity the recorder never saw."""
        self._index()
        held = self._by_entity.get(entity_id)
        if held is None:
            return None
        keys, lo = held.keys, held.head
        start = _iso(start_us)
        committed = bisect.bisect_right(keys, _iso(self.committed_until_us()), lo)
        hi = committed if end_us is None else \
            min(committed, bisect.bisect_left(keys, _iso(end_us), lo))
        first = bisect.bisect_right(keys, start, lo)
        before: Row | None = None
        if with_start:  # the last committed row stamped before start_time
            at = min(bisect.bisect_left(keys, start, lo), committed)
            before = held.rows[at - 1] if at > lo else None
        return before, held.rows[first:hi] if first < hi else []
