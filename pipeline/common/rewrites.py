"""How often a writer wrote each event key: the write record InfluxDB's merge erases.

InfluxDB keeps one point per (series, time) and merges a second write into it silently, so a
path that writes an event twice leaves no trace in the database. Each writer therefore counts
its own successful writes per event key (DESIGN.md: "how often (the writers' own counts)") and
reports the keys it wrote again in ``/api/v1/stats``. A healthy writer never writes a key twice
in one life: Home Assistant delivers each event once per subscription, and storage sets aside
a redelivery it has already made durable. (Across a restart memory starts empty: replaying a
durable queue after a crash is the at-least-once the design allows, and is not counted.)

Bounded: the last ``capacity`` keys are remembered (an LRU), so a rewrite further apart than
that is not seen; the examples kept are the first ``examples`` keys rewritten.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from pipeline.common.events import MEASUREMENT, EventKey
from pipeline.common.influx import InfluxWriter
from pipeline.common.line_protocol import escape_measurement

__all__ = ["CountingWriter", "WriteCounts", "key_of_line"]


class WriteCounts:
    def __init__(self, capacity: int = 100_000, examples: int = 20) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._examples_max = examples
        self._written: OrderedDict[EventKey, int] = OrderedDict()
        self.rewritten = 0  # writes of a key already written (a key written 3 times counts 2)
        self.examples: list[EventKey] = []

    def record(self, keys: Iterable[EventKey]) -> int:
        """Count one successful write of each key; return how many were written before."""
        written = self._written
        again = 0
        for key in keys:
            n = written.get(key)
            if n is None:
                written[key] = 1
                if len(written) > self.capacity:
                    written.popitem(last=False)
                continue
            written[key] = n + 1
            written.move_to_end(key)
            again += 1
            if len(self.examples) < self._examples_max and n == 1:
                self.examples.append(key)
        self.rewritten += again
        return again

    def stats(self) -> dict[str, Any]:
        """``first``: the first keys written again, as [entity_id, time_fired_ns] pairs."""
        return {"rewritten": self.rewritten, "first": [list(k) for k in self.examples],
                "remembered": len(self._written)}


class CountingWriter:
    """An `InfluxWriter` that counts, per key, every write InfluxDB accepted.

    It wraps the last layer before the network, so whatever above it writes a batch twice (a
    retry loop that retries a success, two tasks draining one queue) is counted, however the
    layers above count their own progress.
    """

    def __init__(self, inner: InfluxWriter, counts: WriteCounts) -> None:
        self.inner = inner
        self.counts = counts

    async def write(self, lines: Sequence[str]) -> None:
        await self.inner.write(lines)
        # Events only: a write's ack (acks.py) is bookkeeping beside them, not an event.
        self.counts.record(key_of_line(line) for line in lines if line.startswith(_EVENTS))

    async def ping(self) -> bool:
        return await self.inner.ping()

    async def aclose(self) -> None:
        await self.inner.aclose()


_EVENTS = escape_measurement(MEASUREMENT) + ","


def key_of_line(line: str) -> EventKey:
    """The event key of one of our own line-protocol lines (``to_line``): the ``entity_id`` tag,
    unescaped as InfluxDB reads it (a backslash escapes ',', '=' and ' ', and only those), and
    the timestamp (the last token)."""
    i = line.index(",entity_id=") + len(",entity_id=")
    time_fired_ns = int(line[line.rfind(" ") + 1:])
    comma, space = line.find(",", i), line.find(" ", i)
    end = comma if 0 <= comma < space else space
    if "\\" not in line[i:end]:  # nothing escaped (the usual id): the tag ends at end
        return EventKey(line[i:end], time_fired_ns)
    out: list[str] = []
    while (c := line[i]) not in ", ":
        if c == "\\" and line[i + 1] in ",= ":
            i += 1
            c = line[i]
        out.append(c)
        i += 1
    return EventKey("".join(out), time_fired_ns)
