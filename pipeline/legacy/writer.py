"""The monolith's write path: an in-memory buffer written straight to InfluxDB.

Kept weak on purpose (DESIGN.md: "The legacy monolith keeps the weaknesses a real monolith
has"), so that the harness can show what the migration buys. What it does not do is hide
them: every event it loses is counted in ``dropped[reason]`` (``cutover_events_dropped_total``)
and logged at ERROR with the count and the event ids at the edges of the lost batch.

- ``on_event`` (the Home Assistant client's callback) appends to a bounded deque and returns.
  Beyond ``max_buffer`` events the newest are dropped (reason ``buffer_full``).
- A task writes batches of up to ``batch_size`` lines every ``flush_interval`` s (sooner when a
  batch is full) with the plain `InfluxWriter` (not the durable `BatchWriter`): a failed write
  is retried ``retries`` times with a short doubling backoff, then the batch is dropped
  (``influx_unavailable``; ``dropped_in_doubt`` says how many of those went out once with no
  answer, so InfluxDB may hold them); a batch InfluxDB refuses as invalid is dropped at once
  (``influx_rejected``). A process crash loses the whole buffer, uncounted: nothing survives it.
- Ownership: an event is written iff ``owner == "legacy"`` at its time_fired, else skipped
  (``not_owner``). An event the routing table does not cover yet is held, in memory, at the
  head of the line: everything behind it waits too (time order), so the bound above also
  bounds the hold.
- ``close()`` writes what is buffered (graceful shutdown), within a deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from prometheus_client import Histogram

from pipeline.common.acks import AckRecorder
from pipeline.common.aio import wait_set, within
from pipeline.common.events import BadEvent, Event, describe_key
from pipeline.common.influx import InfluxWriter, WriteError
from pipeline.common.line_protocol import LineProtocolError
from pipeline.common.normalise import normalise
from pipeline.common.points import to_line
from pipeline.common.routing import RoutingFollower

__all__ = ["DROP_REASONS", "LegacyWriter"]

log = logging.getLogger(__name__)

DROP_REASONS = ("buffer_full", "influx_unavailable", "influx_rejected", "shutdown")
_LOG_EVERY = 1000  # per-event log lines (buffer full, malformed): the first, then every 1000th


class LegacyWriter:
    def __init__(
        self,
        influx: InfluxWriter,
        routing: RoutingFollower,
        *,
        max_buffer: int = 100_000,
        batch_size: int = 1000,
        flush_interval: float = 0.1,
        retries: int = 3,
        retry_backoff: float = 0.1,
        latency: Histogram | None = None,
        wall_clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.influx = influx
        self.routing = routing
        self.max_buffer = max_buffer
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.retries = retries
        self.retry_backoff = retry_backoff
        self._latency = latency
        self._wall_clock_ns = wall_clock_ns

        self.received = 0
        self.malformed = 0
        self.written = 0
        self.skipped = 0  # not_owner
        self.dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self.write_failures = 0  # failed write attempts (each retry counts)
        # Of the events dropped as influx_unavailable, those sent at least once with no answer
        # (InfluxDB went away mid-request): it may have stored them, so loss is at most the
        # count of drops and at least that minus these.
        self.dropped_in_doubt = 0
        self._acks = AckRecorder(influx, "legacy")  # each 204, recorded off the write path
        self.batches = 0
        self.last_received_ns: int | None = None
        self.last_written_ns: int | None = None
        self.last_error: str | None = None
        self.failing_since_ns: int | None = None  # set while the latest batch failed
        self.last_progress_ns = wall_clock_ns()  # a write, a skip, or an empty buffer

        self._buffer: deque[tuple[Any, int]] = deque()  # (HA event object, received_at_ns)
        self._held: deque[Event] = deque()  # normalised, awaiting their ownership decision
        self._wake = asyncio.Event()  # something was buffered
        self._full = asyncio.Event()  # a whole batch is buffered
        self._closing = False
        self._deadline: float | None = None  # loop time by which close() gives up
        self._task: asyncio.Task[None] | None = None

    @property
    def depth(self) -> int:
        """Events in memory: received, not yet written, skipped or dropped."""
        return len(self._buffer) + len(self._held)

    @property
    def waiting(self) -> int:
        """Events held because the routing table does not cover the head event yet."""
        if self._held and not self._covered(self._held[0]):
            return self.depth
        return 0

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    # -- the websocket side: O(1), never awaits -----------------------------------------------

    def on_event(self, event: Any, received_at_ns: int) -> None:
        self.received += 1
        self.last_received_ns = received_at_ns
        if self.depth >= self.max_buffer:
            self._count_drop("buffer_full", 1, only_every=_LOG_EVERY)
            return
        self._buffer.append((event, received_at_ns))
        if len(self._buffer) == 1:
            self._wake.set()
        if len(self._buffer) >= self.batch_size:
            self._full.set()

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="legacy-writer")

    async def close(self, timeout: float = 8.0) -> None:
        """Write what is buffered (call after the HA client stopped); give up after
        ``timeout`` s, dropping (and counting) what is left."""
        loop = asyncio.get_running_loop()
        self._closing = True
        self._deadline = loop.time() + timeout
        self._wake.set()
        self._full.set()
        if self._task is not None:
            try:
                await within(asyncio.shield(self._task), timeout + 1.0)
            except TimeoutError:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
        if self.depth:
            self._drop_everything("shutdown")
        await self._acks.aclose()

    @property
    def acks_lost(self) -> int:
        """Batches whose 204 could not be recorded (acks.py)."""
        return self._acks.lost

    # -- the write loop -------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if not self.depth:
                self.last_progress_ns = self._wall_clock_ns()
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if not self._closing and self.depth < self.batch_size:
                await self._wait_for_batch()
            try:
                await self._drain()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a bug here must not silently stop all writes
                log.exception("legacy write loop failed; continuing")
                await asyncio.sleep(self.flush_interval)

    async def _wait_for_batch(self) -> None:
        """The batch window: until a batch is full or flush_interval has passed."""
        self._full.clear()
        if len(self._buffer) >= self.batch_size:
            return
        await wait_set(self._full, self.flush_interval)

    async def _drain(self) -> None:
        """Write every batch that can be decided now; return when a batch is not yet due or
        the head waits for routing coverage."""
        while self.depth:
            self._normalise_some()
            events = self._decide_some()
            if events:
                await self._write(events)
            if self._held and not self._covered(self._held[0]):
                await self._wait_for_coverage(self._held[0].time_fired_ns)
                return
            if not self._closing and self.depth < self.batch_size:
                return

    def _normalise_some(self) -> None:
        # Only up to a batch at a time: normalising 100,000 events in one go would stall the
        # event loop (and the websocket reader) for seconds.
        while self._buffer and len(self._held) < self.batch_size:
            event, received_at_ns = self._buffer.popleft()
            try:
                self._held.append(normalise(event, received_at_ns))
            except BadEvent as exc:
                self.malformed += 1
                if self.malformed % _LOG_EVERY == 1:
                    log.warning("malformed event from Home Assistant; not stored",
                                extra={"reason": str(exc), "malformed": self.malformed})

    def _decide_some(self) -> list[Event]:
        """Pop covered events from the head: legacy's are returned (up to a batch), the others
        are skipped. Stops at the first event the routing table does not cover."""
        table = self.routing.table
        mine: list[Event] = []
        while self._held and len(mine) < self.batch_size:
            event = self._held[0]
            if table is None or not table.covers(event.time_fired_ns):
                break
            self._held.popleft()
            if table.owner(event.entity_id, event.time_fired_ns) == "legacy":
                mine.append(event)
            else:
                self.skipped += 1
                self.last_progress_ns = self._wall_clock_ns()
        return mine

    def _covered(self, event: Event) -> bool:
        table = self.routing.table
        return table is not None and table.covers(event.time_fired_ns)

    async def _wait_for_coverage(self, time_fired_ns: int) -> None:
        timeout = self.flush_interval
        if self._closing:
            assert self._deadline is not None
            timeout = max(0.0, self._deadline - asyncio.get_running_loop().time())
        try:
            await self.routing.wait_covering(time_fired_ns, timeout=timeout)
        except TimeoutError:
            if self._closing:
                self._drop_everything("shutdown")

    async def _write(self, events: list[Event]) -> None:
        stored_at_ns = self._wall_clock_ns()
        lines: list[str] = []
        writable: list[Event] = []
        for event in events:
            try:
                lines.append(to_line(event, writer="legacy", stored_at_ns=stored_at_ns))
            except LineProtocolError as exc:  # normalise should make this unreachable
                self.last_error = str(exc)
                self._count_drop("influx_rejected", 1, events=[event], error=str(exc))
                continue
            writable.append(event)
        if not writable:
            return
        events = writable
        error: WriteError | None = None
        in_doubt = False
        for attempt in range(self.retries + 1):
            try:
                await self.influx.write(lines)
                acked_at_ns = self._wall_clock_ns()
            except WriteError as exc:
                error = exc
                in_doubt = in_doubt or exc.in_doubt
                self.write_failures += 1
                self.last_error = exc.message
                if self.failing_since_ns is None:
                    self.failing_since_ns = self._wall_clock_ns()
                if not exc.retryable:
                    break
                if attempt < self.retries:
                    await asyncio.sleep(self.retry_backoff * 2**attempt)
                continue
            self._written(events)
            # The 204, recorded for this batch's stamp: latency is measured to it (acks.py).
            self._acks.record((stored_at_ns,), acked_at_ns)
            return
        assert error is not None
        if error.retryable:
            self.dropped_in_doubt += len(lines) if in_doubt else 0
            self._count_drop("influx_unavailable", len(lines), events=events, error=error.message)
        else:
            # InfluxDB refused points (e.g. a field type conflict): after a "partial write"
            # it stored the rest; 1.x says how many it refused, else count the whole batch.
            refused = len(lines) if error.dropped is None else min(error.dropped, len(lines))
            self.written += len(lines) - refused
            self._count_drop("influx_rejected", refused, events=events, error=error.message)

    def _written(self, events: list[Event]) -> None:
        now = self._wall_clock_ns()
        self.written += len(events)
        self.batches += 1
        self.last_written_ns = self.last_progress_ns = now
        if self.failing_since_ns is not None:
            log.info("InfluxDB writes succeed again",
                     extra={"failed_for_s": round((now - self.failing_since_ns) / 1e9, 3),
                            "dropped_total": self.dropped_total})
            self.failing_since_ns = None
        if self._latency is not None:
            for event in events:
                self._latency.observe(max(0, now - event.time_fired_ns) / 1e9)

    # -- loss accounting ------------------------------------------------------------------------

    def _drop_everything(self, reason: str) -> None:
        events = list(self._held)  # normalised: their ids go into the log line
        count = len(self._held) + len(self._buffer)
        self._held.clear()
        self._buffer.clear()
        self._count_drop(reason, count, events=events)

    def _count_drop(self, reason: str, count: int, *, events: list[Event] | None = None,
                    error: str | None = None, only_every: int = 1) -> None:
        if count <= 0:
            return
        self.dropped[reason] = self.dropped.get(reason, 0) + count
        if only_every > 1 and self.dropped[reason] % only_every != 1:
            return
        extra: dict[str, Any] = {"reason": reason, "dropped": count,
                                 "dropped_total": self.dropped_total, "error": error}
        if events:
            extra.update(first_event=describe_key(events[0].key),
                         last_event=describe_key(events[-1].key))
        log.error("events dropped: the monolith has no durable buffer", extra=extra)
