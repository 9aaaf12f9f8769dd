"""The ledger: ground truth of everything the fake Home Assistant fired, and to whom.

Every later verdict (lost, duplicated, unexpected, inconsistent) is computed against it, so it
has two duties:

* On disk, as it goes: each batch of fired events is appended to ``ledger.jsonl`` with one
  ``os.write`` *before* any of those frames is queued to a socket. Once ``write`` returns the
  bytes are in the kernel's page cache, so a SIGKILL of the server cannot lose the record of an
  event that may have been sent. (A sync write of a few KB takes microseconds; doing it on the
  event loop is deliberate: handing it to a thread would open a window where a frame is sent
  but its record is not yet written.)
* In memory, queryable: columns in compact arrays rather than one object per event, so
  10 million entries take well under a gigabyte.

Connection lifecycle lines (opened, authenticated, subscribed, closed with a reason such as a
back-pressure disconnect) are interleaved in the same file, in the order they happened.
"""

from __future__ import annotations

import asyncio
import os
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from pipeline.common.events import EventKey

from .events import StateChange
from .timefmt import iso_from_ns

CONTEXT_ID_LEN = 26


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One fired event as the ledger knows it. Its identity is `key`; ``context_id`` is Home
    Assistant's cause, shared by every change one action made."""

    context_id: str
    entity_id: str
    time_fired_ns: int
    emitted_ns: int
    connections: tuple[str, ...]
    state: str | None  # new state string; None when the entity was removed

    @property
    def key(self) -> EventKey:
        return EventKey(self.entity_id, self.time_fired_ns)


@dataclass(frozen=True, slots=True)
class LedgerColumns:
    """The ledger as plain columns, for a verdict that reads every entry: row i is entry i.
    ``first`` maps each key to its first entry (what was sent); ``states`` has "" where the
    entity was removed (what a stored point of it reads as)."""

    entity_ids: list[str]
    times_ns: list[int]
    states: list[str]
    connection_set: list[int]  # row -> index into connection_sets
    connection_sets: list[tuple[str, ...]]
    first: dict[tuple[str, int], int]  # plain tuples: an EventKey finds them (tuple equality)


@dataclass(frozen=True, slots=True)
class ConnectionRecord:
    """A line of a connection's life: ``opened``, ``authenticated``, ``subscribed``, ``closed``."""

    connection: str
    what: str
    at_ns: int
    info: dict[str, Any]


class _StringColumn:
    """Strings packed into one bytearray with an offsets array: ~len+8 bytes per value."""

    __slots__ = ("_data", "_ends", "_none")

    def __init__(self) -> None:
        self._data = bytearray()
        self._ends = array("Q")
        self._none = bytearray()  # 1 where the value is None

    def append(self, value: str | None) -> None:
        if value is None:
            self._none.append(1)
        else:
            self._none.append(0)
            self._data += value.encode()
        self._ends.append(len(self._data))

    def __getitem__(self, i: int) -> str | None:
        if self._none[i]:
            return None
        start = self._ends[i - 1] if i else 0
        return self._data[start : self._ends[i]].decode()

    def nbytes(self) -> int:
        return len(self._data) + self._ends.itemsize * len(self._ends) + len(self._none)

    def decoded(self, start: int = 0, stop: int | None = None) -> list[str | None]:
        """Values ``start:stop``, decoded in one pass (a verdict over millions reads them all)."""
        stop = len(self._ends) if stop is None else stop
        if start >= stop:
            return []
        base = self._ends[start - 1] if start else 0
        data = bytes(self._data[base:self._ends[stop - 1]])
        ends = [end - base for end in self._ends[start:stop]]
        starts = [0, *ends[:-1]]
        none = self._none[start:stop]
        if data.isascii() and 1 not in none:  # the usual case: bytes are characters
            text = data.decode()
            return [text[a:b] for a, b in zip(starts, ends, strict=True)]
        return [None if gone else data[a:b].decode()
                for a, b, gone in zip(starts, ends, none, strict=True)]


class _Interned:
    """Values that repeat (entity ids, sets of connections) stored once, referenced by index."""

    __slots__ = ("values", "_index")

    def __init__(self) -> None:
        self.values: list[Any] = []
        self._index: dict[Any, int] = {}

    def intern(self, value: Any) -> int:
        idx = self._index.get(value)
        if idx is None:
            idx = self._index[value] = len(self.values)
            self.values.append(value)
        return idx


class Ledger:
    """Append-only record of fired events; see the module docstring for its guarantees.

    ``path=None`` keeps it in memory only (unit tests, benchmarks of the server alone).
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._fd: int | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._ids = bytearray()
        self._entity = array("I")
        self._time_fired = array("q")
        self._emitted = array("q")
        self._conns = array("I")
        self._states = _StringColumn()
        self._entities = _Interned()
        self._conn_sets = _Interned()
        self._connection_log: list[ConnectionRecord] = []
        self._by_key: dict[EventKey, int] | None = None  # built on the first lookup, then kept
        self._columns: LedgerColumns | None = None  # built on demand, for as long as it is whole
        # The span of time_fired the ledger judges: (after, up to); None: no bound. A witness
        # of a live Home Assistant sets it (what fired before the pipeline subscribed, or
        # after the plan, is neither in the ledger nor a stray when found stored).
        self.books: tuple[int | None, int | None] = (None, None)

    # -- writing -----------------------------------------------------------------------------

    def record_fired(
        self, batch: Sequence[tuple[StateChange, tuple[str, ...]]], emitted_ns: int
    ) -> None:
        """Record a batch of fired events and the connections each went to (one write)."""
        if not batch:
            return
        lines = []
        for change, conns in batch:
            lines.append(
                orjson.dumps(
                    {
                        "k": "event",
                        "context_id": change.context_id,
                        "entity_id": change.entity_id,
                        "time_fired": iso_from_ns(change.time_fired_ns),
                        "time_fired_ns": change.time_fired_ns,
                        "state": change.state,
                        "connections": conns,
                        "emitted_ns": emitted_ns,
                    }
                )
            )
            self._append(change.context_id, change.entity_id, change.time_fired_ns,
                         emitted_ns, conns, change.state)
        self._write(b"\n".join(lines) + b"\n")

    def record_connection(self, connection: str, what: str, at_ns: int, **info: Any) -> None:
        """Record a connection lifecycle step (``opened``, ``closed`` with ``reason``...)."""
        record = ConnectionRecord(connection, what, at_ns, info)
        self._connection_log.append(record)
        self._write(
            orjson.dumps({"k": "conn", "connection": connection, "what": what,
                          "at_ns": at_ns, **info}) + b"\n"
        )

    def record_books(self, after_ns: int | None, until_ns: int | None) -> None:
        """Judge only events fired after ``after_ns`` and up to ``until_ns``."""
        self.books = (after_ns, until_ns)
        self._write(orjson.dumps({"k": "books", "after_ns": after_ns, "until_ns": until_ns})
                    + b"\n")

    def judges(self, time_fired_ns: int) -> bool:
        """Whether an event fired at this time is inside the books."""
        after, until = self.books
        return (after is None or time_fired_ns > after) and (until is None
                                                             or time_fired_ns <= until)

    def _write(self, data: bytes) -> None:
        if self._fd is None:
            return
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def _append(self, context_id: str, entity_id: str, time_fired_ns: int, emitted_ns: int,
                conns: tuple[str, ...], state: str | None) -> None:
        raw = context_id.encode()
        if len(raw) != CONTEXT_ID_LEN:
            raise ValueError(f"context id {context_id!r} is not a 26-character ULID")
        if self._by_key is not None:
            # A key fired twice (never by Home Assistant) keeps its first entry: what was sent.
            self._by_key.setdefault(EventKey(entity_id, time_fired_ns), len(self._time_fired))
        self._ids += raw
        self._entity.append(self._entities.intern(entity_id))
        self._time_fired.append(time_fired_ns)
        self._emitted.append(emitted_ns)
        self._conns.append(self._conn_sets.intern(conns))
        self._states.append(state)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # -- reading -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._time_fired)

    def __getitem__(self, i: int) -> LedgerEntry:
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return LedgerEntry(
            context_id=self.context_id(i),
            entity_id=self._entities.values[self._entity[i]],
            time_fired_ns=self._time_fired[i],
            emitted_ns=self._emitted[i],
            connections=self._conn_sets.values[self._conns[i]],
            state=self._states[i],
        )

    def __iter__(self) -> Iterator[LedgerEntry]:
        for i in range(len(self)):
            yield self[i]

    def context_id(self, i: int) -> str:
        return self._ids[i * CONTEXT_ID_LEN : (i + 1) * CONTEXT_ID_LEN].decode()

    def key(self, i: int) -> EventKey:
        return EventKey(self._entities.values[self._entity[i]], self._time_fired[i])

    def columns(self) -> LedgerColumns:
        """Every entry as columns, built in bulk (seconds for millions, not one object each)."""
        for _ in self._build_columns(len(self) or 1):
            pass
        assert self._columns is not None
        return self._columns

    async def columns_async(self, rows_per_step: int = 100_000) -> LedgerColumns:
        """``columns``, a slice of rows at a time, handing the event loop back between slices:
        a verdict builds them while it waits for InfluxDB to answer its query."""
        for _ in self._build_columns(rows_per_step):
            await asyncio.sleep(0)
        return self.columns()  # the ledger may have grown meanwhile: then built again, whole

    def _build_columns(self, step: int) -> Iterator[None]:
        if self._columns is not None and len(self._columns.times_ns) == len(self):
            return
        n, names = len(self), self._entities.values
        entity_ids: list[str] = []
        times: list[int] = []
        states: list[str] = []
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            entity_ids += map(names.__getitem__, self._entity[lo:hi])
            times += self._time_fired[lo:hi].tolist()
            states += ["" if s is None else s for s in self._states.decoded(lo, hi)]
            yield
        # Slices from the last to the first, each row's key set after every later one: the
        # first entry of a key fired twice is the one kept.
        first: dict[tuple[str, int], int] = {}
        for lo in reversed(range(0, n, step)):
            hi = min(n, lo + step)
            first.update(zip(zip(reversed(entity_ids[lo:hi]), reversed(times[lo:hi]),
                                 strict=True), range(hi - 1, lo - 1, -1), strict=True))
            yield
        self._columns = LedgerColumns(
            entity_ids=entity_ids, times_ns=times, states=states,
            connection_set=self._conns[:n].tolist(),
            connection_sets=list(self._conn_sets.values), first=first)

    def keys(self) -> set[EventKey]:
        names = self._entities.values
        return {EventKey(names[e], t) for e, t in zip(self._entity, self._time_fired, strict=True)}

    def find(self, key: EventKey) -> LedgerEntry | None:
        """The entry of the event ``key`` = (entity_id, time_fired_ns), or None."""
        if self._by_key is None:
            by_key: dict[EventKey, int] = {}
            for i in range(len(self)):
                by_key.setdefault(self.key(i), i)
            self._by_key = by_key
        found = self._by_key.get(key)
        return None if found is None else self[found]

    def delivered_to(self, connection: str) -> Iterator[LedgerEntry]:
        """Events that were queued to one connection."""
        wanted = {i for i, conns in enumerate(self._conn_sets.values) if connection in conns}
        for i in range(len(self)):
            if self._conns[i] in wanted:
                yield self[i]

    @property
    def connections(self) -> list[ConnectionRecord]:
        return list(self._connection_log)

    def connections_of(self, role: str) -> frozenset[str]:
        """The connections whose client named ``role`` in its User-Agent when it opened
        (``ha-cutover ingestion``): how the harness knows which reader an event went to."""
        return frozenset(r.connection for r in self._connection_log
                         if r.what == "opened" and role in str(r.info.get("agent", "")).split())

    def nbytes(self) -> int:
        """Memory held by the columns (the interned tables are small and left out)."""
        return (len(self._ids) + sum(a.itemsize * len(a) for a in
                (self._entity, self._time_fired, self._emitted, self._conns))
                + self._states.nbytes())

    @classmethod
    def load(cls, path: Path | str) -> Ledger:
        """Read a ledger file back (e.g. after the server was SIGKILLed).

        A torn last line (the process died mid-write) is ignored; a torn line anywhere else
        means the file was damaged and raises, naming the line.
        """
        ledger = cls(None)
        ledger.path = Path(path)
        with open(path, "rb") as f:
            lines = f.read().split(b"\n")
        last = len(lines) - 1
        for n, line in enumerate(lines, start=1):
            if not line:
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:
                if n - 1 == last:
                    break
                raise ValueError(f"{path}:{n}: not a ledger line: {line[:80]!r}") from None
            ledger._load_record(rec)
        return ledger

    def _load_record(self, rec: dict[str, Any]) -> None:
        if rec.get("k") == "event":
            # "event_id": ledgers written before the context stopped being an identity.
            context_id = rec["context_id"] if "context_id" in rec else rec["event_id"]
            self._append(context_id, rec["entity_id"], rec["time_fired_ns"],
                         rec["emitted_ns"], tuple(rec["connections"]), rec["state"])
        elif rec.get("k") == "books":
            self.books = (rec.get("after_ns"), rec.get("until_ns"))
        elif rec.get("k") == "conn":
            info = {k: v for k, v in rec.items() if k not in ("k", "connection", "what", "at_ns")}
            self._connection_log.append(
                ConnectionRecord(rec["connection"], rec["what"], rec["at_ns"], info))

