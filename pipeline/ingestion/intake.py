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

A malformed event (``normalise`` raises `BadEvent`) is counted and logged with the reason that
names the field; it never reaches the outbox and never stops the task.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Histogram

from pipeline.common.durable_queue import DurableQueue
from pipeline.common.events import BadEvent, dumps_event, normalise

__all__ = ["Intake"]

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
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Events in memory only (not yet durable)."""
        return len(self._pending) + len(self._ready)

    # -- the websocket side: O(1), never awaits -----------------------------------------------

    def on_event(self, event: Any, received_at_ns: int) -> None:
        if self._closing:
            return  # the HA client is stopped before close(); nothing should arrive here
        self._pending.append((event, received_at_ns))
        self.received += 1
        self.last_received_ns = received_at_ns
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
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
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
        for event, received_at_ns in group:
            try:
                payload = dumps_event(normalise(event, received_at_ns))
            except BadEvent as exc:
                self._malformed(event, exc)
                continue
            if self._ready_oldest_ns is None:
                self._ready_oldest_ns = received_at_ns
            self._ready.append(payload)
        if not self._ready:
            return True
        try:
            await self.queue.put_many(self._ready)
        except Exception as exc:  # noqa: BLE001 - disk full, I/O error: keep the events, retry
            self.commit_errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            if self.failing_since_ns is None:
                self.failing_since_ns = self._wall_clock_ns()
                log.error("cannot write events to the outbox; holding them in memory",
                          extra={"error": self.last_error, "pending": self.pending})
            return False
        now = self._wall_clock_ns()
        count = len(self._ready)
        self.committed += count
        self.commits += 1
        self.last_commit_ns = now
        assert self._ready_oldest_ns is not None
        delay = now - self._ready_oldest_ns
        self.last_commit_delay_ns = delay
        self.max_commit_delay_ns = max(self.max_commit_delay_ns, delay)
        if self._durable_delay is not None:
            self._durable_delay.observe(delay / 1e9)
        if self.failing_since_ns is not None:
            log.info("outbox writable again", extra={"committed": count})
            self.failing_since_ns = None
        self._ready = []
        self._ready_oldest_ns = None
        self._on_durable()
        return True

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
