"""The outbox the forwarder drains, deciding each event's target as it leaves.

Ownership (DESIGN.md "The migration"): an event goes to the production database when the new
pipeline owns it, to the shadow database when it does not but shadowing is on at its
time_fired, and nowhere (skipped, reason not_owner) otherwise; all of it by the routing table
in force at the event's time_fired. The decision is made here, when the event leaves the
durable outbox, not when it arrives:

- an event the routing table does not cover yet (time_fired beyond ``valid_until_ns``) is
  held where it already is, in the durable outbox, until a fresher table covers it: never
  dropped, never guessed, and it survives a crash while it waits (admin-api may be down for
  minutes; an in-memory hold would have to be bounded, i.e. drop);
- the decision is a pure function of the event and the table's append-only history, so
  deciding late gives the same answer as deciding early.

`OwnershipOutbox` wraps the `DurableQueue` in the ``Outbox`` shape `Forwarder` expects
(``peek`` / cumulative ``ack`` / ``depth``). ``peek`` returns only the events to forward, with
``target`` set; skipped events between them are removed by the forwarder's cumulative ack of the
batch (its ack covers every seq up to the last forwarded one), skipped events with nothing to
forward before them are acked here. Counters are read by stats and metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Literal

import orjson

from pipeline.common.durable_queue import DurableQueue
from pipeline.common.routing import RoutingFollower, RoutingTable

__all__ = ["OwnershipOutbox", "Target", "decide"]

log = logging.getLogger(__name__)

Target = Literal["production", "shadow"]


def decide(table: RoutingTable, entity_id: str, time_fired_ns: int) -> Target | None:
    """Where the new pipeline stores this event; None when it is not the new pipeline's."""
    if table.owner(entity_id, time_fired_ns) == "new":
        return "production"
    if table.shadow_enabled_at(time_fired_ns):
        return "shadow"
    return None


class OwnershipOutbox:
    def __init__(
        self,
        queue: DurableQueue,
        routing: RoutingFollower,
        *,
        coverage_wait: float = 0.5,
        wall_clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.queue = queue
        self.routing = routing
        self.coverage_wait = coverage_wait
        self._wall_clock_ns = wall_clock_ns

        self.forwarded: dict[Target, int] = {"production": 0, "shadow": 0}
        self.skipped = 0  # not_owner
        self.undecodable = 0  # dead-lettered: an outbox item that is not an event (disk damage)
        self.last_forwarded_ns: int | None = None
        # Wall clock of the last sign of progress: an ack, a skip, or an empty outbox.
        self.last_progress_ns = wall_clock_ns()
        self.waiting_since_ns: int | None = None  # the head event awaits routing coverage
        self._in_flight: list[tuple[int, Target | None]] = []  # decisions of the last peek

    @property
    def depth(self) -> int:
        return self.queue.depth

    @property
    def waiting(self) -> int:
        """Events held for routing coverage. Events are in time order, so when the head is not
        covered, neither is anything behind it: the whole outbox waits."""
        return self.queue.depth if self.waiting_since_ns is not None else 0

    @property
    def processed(self) -> int:
        return self.forwarded["production"] + self.forwarded["shadow"]

    async def peek(self, n: int, /) -> list[tuple[int, bytes]]:
        while True:
            rows = await self.queue.peek(n)
            if not rows:
                self.waiting_since_ns = None
                self.last_progress_ns = self._wall_clock_ns()
                return []
            out, decisions, uncovered = await self._decide(rows)
            if out:
                last = out[-1][0]
                self._in_flight = [d for d in decisions if d[0] <= last]
                if uncovered is None:
                    self.waiting_since_ns = None
                return out
            if decisions:  # only skipped events: nothing to send for them, ack them here
                await self.queue.ack(decisions[-1][0])
                self.skipped += len(decisions)
                self.last_progress_ns = self._wall_clock_ns()
            if uncovered is None:
                continue  # skipped (or dead-lettered) a whole range: look at what follows
            if self.waiting_since_ns is None:
                self.waiting_since_ns = self._wall_clock_ns()
            try:
                await self.routing.wait_covering(uncovered, timeout=self.coverage_wait)
            except TimeoutError:
                return []  # the forwarder asks again; the events stay durable meanwhile
            self.waiting_since_ns = None

    async def ack(self, seq: int, /) -> int:
        removed = await self.queue.ack(seq)
        now = self._wall_clock_ns()
        for item_seq, target in self._in_flight:
            if item_seq > seq:
                break
            if target is None:
                self.skipped += 1
            else:
                self.forwarded[target] += 1
        self._in_flight = [d for d in self._in_flight if d[0] > seq]
        self.last_forwarded_ns = self.last_progress_ns = now
        return removed

    async def _decide(
        self, rows: list[tuple[int, bytes]]
    ) -> tuple[list[tuple[int, bytes]], list[tuple[int, Target | None]], int | None]:
        """Decide rows in order up to the first one the table does not cover.

        Returns (events to forward with target set, every decision, time_fired of the first
        uncovered event or None)."""
        out: list[tuple[int, bytes]] = []
        decisions: list[tuple[int, Target | None]] = []
        bad: list[int] = []
        uncovered: int | None = None
        table = self.routing.table
        for seq, payload in rows:
            try:
                doc = orjson.loads(payload)
                entity_id, time_fired_ns = doc["entity_id"], doc["time_fired_ns"]
                if not isinstance(entity_id, str) or type(time_fired_ns) is not int:
                    raise TypeError("entity_id / time_fired_ns of the wrong type")
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                bad.append(seq)
                log.error("undecodable outbox item; dead-lettered",
                          extra={"seq": seq, "error": repr(exc)})
                continue
            # The table captured above, not the follower's latest: deciding with entries read
            # from one table and coverage from a fresher one could miss an entry.
            if table is None or not table.covers(time_fired_ns):
                uncovered = time_fired_ns
                break
            target = decide(table, entity_id, time_fired_ns)
            decisions.append((seq, target))
            if target is not None:
                doc["target"] = target
                out.append((seq, orjson.dumps(doc)))
        if bad:
            # Before any ack: a cumulative ack past them must not be what removes them.
            await self.queue.dead_letter(bad, "undecodable outbox item")
            self.undecodable += len(bad)
        return out, decisions, uncovered
