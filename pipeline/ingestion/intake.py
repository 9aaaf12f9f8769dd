"""From the websocket to the durable outbox, without ever blocking the websocket reader.

`Intake.on_event` is the Home Assistant client's callback: it appends the raw event to an
in-memory list and returns. A separate task commits that list to the outbox (a `DurableQueue`)
as a group: it wakes as soon as something is pending, normalises what is there, writes it in one
transaction, and meanwhile the next group accumulates. Under load, groups grow instead of
commits queueing up; at low rates every event is committed on its own within about a millisecond.

The loss window: between ``on_event`` and the end of the commit holding the event, it exists in
this process's memory only. A SIGKILL (or OOM, or power cut) in that window loses it, and Home
Assistant never replays: that window is the irreducible risk of any websocket consumer. Its
length is what one normalise + commit takes, a few ms (measured into the histogram
``cutover_ingest_durable_delay_seconds`` and ``last_commit_delay_ms`` in the stats). Everything
after the commit survives a crash. A graceful shutdown commits what is pending before exiting.

Each commit also advances, in the same transaction, the outbox's mark ``last_durable_ns``: the
newest time_fired made durable. After a restart (a SIGKILL included) that mark is where the
gap begins that `pipeline.ingestion.recovery` asks Home Assistant's history for. For the gaps
of reconnects, a `Watch` marks where the previous connections' events end (``at_seq``, the
count received so far) and collects the keys the new subscription delivers, so recovery can
tell what it already has.

A malformed event (``normalise`` raises `BadEvent`) is counted and logged with the reason that
names the field; it never reaches the outbox and never stops the task.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Histogram

from pipeline.common.aio import within
from pipeline.common.durable_queue import DurableQueue
from pipeline.common.events import BadEvent, Event, EventKey, dumps_event
from pipeline.common.normalise import normalise

__all__ = ["DURABLE_MARK", "ENTITIES", "Intake", "Watch"]

#: The outbox mark holding the newest time_fired made durable (ns).
DURABLE_MARK = "last_durable_ns"
#: The outbox's set of every entity id seen: history is asked per entity, and an entity removed
#: during a gap is in no list Home Assistant still gives.
ENTITIES = "entities"


@dataclass(slots=True)
class Watch:
    """What the subscriptions since a gap delivered, for the recovery of that gap.

    ``at_seq``: how many events had been received when the first of them was asked for; every
    later event came from one of them (``keys``; recovery adds what it read back, so a second
    pass skips it too). ``before_ns``/``before_key``: the newest event received before: the
    gap starts there. ``latest_*``: where the newest subscription begins and its first event:
    Home Assistant delivers in order, so everything from that event on arrives live.
    """

    at_seq: int
    before_ns: int | None
    before_key: EventKey | None
    keys: set[EventKey] = field(default_factory=set)
    latest_at_seq: int = 0
    latest_first_ns: int | None = None
    latest_first_key: EventKey | None = None
    generation: int = 1  # subscriptions watched; a recovery pass runs until it has seen the last

    def resubscribed(self, at_seq: int) -> None:
        """Another connection subscribes before the gap was recovered: it extends the gap."""
        self.latest_at_seq = at_seq
        self.latest_first_ns = self.latest_first_key = None
        self.generation += 1


log = logging.getLogger(__name__)

_LOG_EVERY = 100  # malformed events: log the first, then every 100th (with the running count)


class Intake:
    def __init__(
        self,
        queue: DurableQueue,
        *,
        on_durable: Callable[[], None],
        max_group: int = 2000,
        durable_delay: Histogram | None = None,
        retry_delay: float = 0.1,
        wall_clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.queue = queue
        self.max_group = max_group
        self.retry_delay = retry_delay
        self._on_durable = on_durable
        self._durable_delay = durable_delay
        self._wall_clock_ns = wall_clock_ns

        self.received = 0  # events handed over by the HA client
        self.malformed = 0  # of which refused by normalise
        self.committed = 0  # of which durable in the outbox
        self.commits = 0
        self.commit_errors = 0
        self.last_received_ns: int | None = None
        self.last_commit_ns: int | None = None
        self.last_commit_delay_ns: int | None = None  # receive -> durable, oldest of the group
        self.max_commit_delay_ns = 0
        self.last_error: str | None = None
        self.failing_since_ns: int | None = None  # set while commits fail

        self._pending: list[tuple[Any, int]] = []  # (HA event object, received_at_ns)
        self._ready: list[bytes] = []  # normalised, waiting for a commit that succeeds
        self._ready_oldest_ns: int | None = None
        self._committing = 0  # events in the commit under way
        self._normalised_seq = 0  # events taken from _pending so far (seq of the next one)
        self._normalised = asyncio.Event()
        # The newest live event normalised (its time and key): where a gap starts.
        self.newest_ns: int | None = queue.mark(DURABLE_MARK)
        self.newest_key: EventKey | None = None
        self._watches: list[Watch] = []
        self.entities: set[str] = set(queue.members(ENTITIES))
        self._new_entities: set[str] = set()  # seen, not yet in the outbox's set
        self.recovered = 0  # events from history made durable
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Events in memory only (not yet durable)."""
        return len(self._pending) + len(self._ready) + self._committing

    # -- the websocket side: O(1), never awaits -----------------------------------------------

    def on_event(self, event: Any, received_at_ns: int) -> None:
        if self._closing:
            return  # the HA client is stopped before close(); nothing should arrive here
        self._pending.append((event, received_at_ns))
        self.received += 1
        self.last_received_ns = received_at_ns
        self._wake.set()

    # -- what recovery needs ------------------------------------------------------------------

    def watch(self) -> Watch:
        """Start collecting what the subscription about to be asked for delivers."""
        watch = Watch(at_seq=self.received, before_ns=self.newest_ns, before_key=self.newest_key,
                      latest_at_seq=self.received)
        self._watches.append(watch)
        return watch

    def unwatch(self, watch: Watch) -> None:
        if watch in self._watches:
            self._watches.remove(watch)

    async def normalised_up_to(self, seq: int) -> None:
        """Return once every event received before ``seq`` has been normalised: the newest time
        of the earlier connections is then known."""
        while self._normalised_seq < seq and not self._closing:
            self._normalised.clear()
            await self._normalised.wait()

    def add_recovered(self, events: list[Event]) -> None:
        """Events read back from history: committed like the rest, with the next group."""
        for event in events:
            if self.newest_ns is None or event.time_fired_ns > self.newest_ns:
                self.newest_ns, self.newest_key = event.time_fired_ns, event.key
            if event.entity_id not in self.entities:
                self.entities.add(event.entity_id)
                self._new_entities.add(event.entity_id)
            if self._ready_oldest_ns is None:
                self._ready_oldest_ns = event.received_at_ns
            self._ready.append(dumps_event(event))
        self.recovered += len(events)
        self._wake.set()

    # -- the commit side ----------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ingestion-intake")

    async def close(self, timeout: float = 5.0) -> None:
        """Commit what is pending (up to ``timeout`` s), then stop. Call after the HA client
        stopped. What could not be committed is lost and said so, loudly."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            try:
                await within(asyncio.shield(self._task), timeout)
            except TimeoutError:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
        if self.pending:
            log.error("shutting down with events not made durable: they are lost",
                      extra={"lost": self.pending, "error": self.last_error})

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending or self._ready:
                if not await self._commit_group():
                    if self._closing:
                        return  # the outbox is failing and we are asked to stop: give up
                    await asyncio.sleep(self.retry_delay)
            if self._closing:
                return

    async def _commit_group(self) -> bool:
        """Normalise up to max_group pending events and commit everything ready. True if the
        commit succeeded (or there was nothing to commit)."""
        group = self._pending[: self.max_group]
        del self._pending[: len(group)]
        seq = self._normalised_seq
        self._normalised_seq += len(group)
        for event, received_at_ns in group:
            seq += 1
            try:
                normal = normalise(event, received_at_ns)
            except BadEvent as exc:
                self._malformed(event, exc)
                continue
            self._track(normal, seq - 1)
            if self._ready_oldest_ns is None:
                self._ready_oldest_ns = received_at_ns
            self._ready.append(dumps_event(normal))
        self._normalised.set()
        if not self._ready:
            return True
        # Taken out before the commit's await: recovery may add events meanwhile, and they
        # belong to the next commit, not to this one's clean-up.
        batch, oldest_ns, entities = self._ready, self._ready_oldest_ns, self._new_entities
        self._ready, self._ready_oldest_ns, self._new_entities = [], None, set()
        mark = self._durable_mark()
        marks = None if mark is None else {DURABLE_MARK: mark}
        members = {ENTITIES: list(entities)} if entities else None
        self._committing = len(batch)
        try:
            await self.queue.put_many(batch, marks=marks, members=members)
        except Exception as exc:  # noqa: BLE001 - disk full, I/O error: keep the events, retry
            self._committing = 0
            self._ready = batch + self._ready
            if oldest_ns is not None:
                self._ready_oldest_ns = oldest_ns
            self._new_entities |= entities
            self.commit_errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            if self.failing_since_ns is None:
                self.failing_since_ns = self._wall_clock_ns()
                log.error("cannot write events to the outbox; holding them in memory",
                          extra={"error": self.last_error, "pending": self.pending})
            return False
        self._committing = 0
        now = self._wall_clock_ns()
        count = len(batch)
        self.committed += count
        self.commits += 1
        self.last_commit_ns = now
        assert oldest_ns is not None
        delay = now - oldest_ns
        self.last_commit_delay_ns = delay
        self.max_commit_delay_ns = max(self.max_commit_delay_ns, delay)
        if self._durable_delay is not None:
            self._durable_delay.observe(delay / 1e9)
        if self.failing_since_ns is not None:
            log.info("outbox writable again", extra={"committed": count})
            self.failing_since_ns = None
        self._on_durable()
        return True

    def _durable_mark(self) -> int | None:
        """The newest time made durable, held at the start of a gap not yet recovered: a crash
        during recovery leaves the next start the whole gap to read again."""
        held = [w.before_ns for w in self._watches if w.before_ns is not None]
        if self.newest_ns is None:
            return None
        return min([self.newest_ns, *held])

    def _track(self, event: Event, seq: int) -> None:
        """Keep the newest live time, and feed the watches of the subscriptions it came from."""
        t = event.time_fired_ns
        if event.entity_id not in self.entities:
            self.entities.add(event.entity_id)
            self._new_entities.add(event.entity_id)
        for watch in self._watches:
            if seq >= watch.at_seq:
                key = event.key
                watch.keys.add(key)
                if seq >= watch.latest_at_seq and watch.latest_first_ns is None:
                    watch.latest_first_ns, watch.latest_first_key = t, key
            elif watch.before_ns is None or t >= watch.before_ns:
                watch.before_ns, watch.before_key = t, event.key
        if self.newest_ns is None or t >= self.newest_ns:
            self.newest_ns, self.newest_key = t, event.key

    def _malformed(self, event: Any, exc: BadEvent) -> None:
        self.malformed += 1
        if self.malformed % _LOG_EVERY == 1:
            log.warning("malformed event from Home Assistant; not ingested",
                        extra={"reason": str(exc), "context_id": _context_id(event),
                               "malformed": self.malformed})


def _context_id(event: Any) -> str | None:
    """The event's context id when it has one, for the log line."""
    try:
        value = event["context"]["id"]
    except (KeyError, TypeError, IndexError):
        return None
    return value if isinstance(value, str) else None
