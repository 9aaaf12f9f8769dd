"""The write path to InfluxDB: durable, batching, retrying, dead-lettering what is refused.

`BatchWriter` is what every service writes through: lines go into a `DurableQueue` first,
a background task writes them in batches and acks them only after InfluxDB's 204, retrying
what is retryable forever (with backoff) and isolating refused lines into the dead-letter
table by bisection. Nothing is dropped silently (FAILURE_MODES.md #3, #7).

Why bisection: InfluxDB 1.x answers a batch with bad points by writing the good ones and
returning 400 "partial write", but it does not say which lines were refused, and a line with an
unbalanced quote makes it swallow every following line while reporting ``dropped=0``. Re-writing
halves is safe because a point is keyed by measurement, tags and time: writing it again
overwrites it with the same values.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from pipeline.common.acks import AckRecorder, stamp_of
from pipeline.common.aio import wait_set, within
from pipeline.common.durable_queue import DurableQueue
from pipeline.common.events import Writer
from pipeline.common.influx import InfluxWriter, WriteError

__all__ = ["BatchWriter"]

log = logging.getLogger(__name__)


def _backoff(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full jitter: uniform(0, min(cap, base * 2**attempt)), so writers restarted together
    spread out."""
    return rng.uniform(0.0, min(cap, base * 2 ** min(attempt, 32)))


class BatchWriter:
    """Durable, batching, retrying writer: ``submit`` lines, they reach InfluxDB or a dead letter.

    Lines are stored in the `DurableQueue` before `submit` returns, so a crash loses nothing;
    a line leaves the queue only when InfluxDB answered 204 for a batch holding it, or when
    InfluxDB refused that very line (then it is in the dead-letter table, with the reason).
    Counters are plain attributes for the metrics endpoint. ``on_written``, if given, is called
    with the lines of each batch InfluxDB accepted (after the 204), e.g. to observe latency.
    """

    def __init__(
        self,
        writer: InfluxWriter,
        queue: DurableQueue,
        *,
        max_batch: int = 5000,
        flush_interval: float = 0.1,
        backoff_base: float = 0.05,
        backoff_cap: float = 5.0,
        close_writer: bool = True,
        close_queue: bool = True,
        rng: random.Random | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
        on_written: Callable[[list[str]], None] | None = None,
        ack_as: Writer | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self.writer = writer
        self.queue = queue
        self.max_batch = max_batch
        self.flush_interval = flush_interval
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._close_writer = close_writer
        self._close_queue = close_queue
        self._rng = rng or random.Random()
        self._clock_ns = clock_ns
        self.on_written = on_written
        # record each 204 for the points' stamps (`acks`) as this writer
        self._acks = AckRecorder(writer, ack_as) if ack_as is not None else None

        # Counters (monotonic over this object's life) and gauges, for metrics.
        self.points_written = 0
        self.batches_written = 0
        self.write_errors = 0  # failed write requests, retryable or not
        self.retries = 0
        self.dead_lettered = 0
        self.last_write_ok_ns: int | None = None
        self.last_error: str | None = None

        self._task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self._changed = asyncio.Condition()
        self._flush_waiters = 0
        self._batch_started = 0.0
        self._closing = False
        self._closed = False

    @classmethod
    async def open(cls, writer: InfluxWriter, queue_path: str | Path, **kwargs: Any) -> BatchWriter:
        """Open (or reopen, replaying what it holds) the queue at ``queue_path`` and start."""
        queue = await DurableQueue.open(queue_path)
        batch_writer = cls(writer, queue, **kwargs)
        batch_writer.start()
        return batch_writer

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="influx-batch-writer")
            if self.queue.depth:
                self._wakeup.set()  # a reopened queue replays at once

    @property
    def acks_lost(self) -> int:
        """Batches whose 204 could not be recorded (see `acks`)."""
        return self._acks.lost if self._acks is not None else 0

    @property
    def depth(self) -> int:
        """Lines accepted by `submit` and not yet written (or dead-lettered)."""
        return self.queue.depth

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def submit(self, lines: Sequence[str]) -> None:
        """Store lines durably; they are written in the background. Returns once stored."""
        if self._closing:
            raise RuntimeError("BatchWriter is closed")
        if not lines:
            return
        try:
            await self.queue.put_many([line.encode() for line in lines])
        finally:
            self._wakeup.set()

    async def flush(self, timeout: float | None = None) -> bool:
        """Write what is queued now, without waiting for the interval; True once the queue is
        empty."""
        self._flush_waiters += 1
        self._wakeup.set()
        try:
            async with self._changed:
                await within(self._changed.wait_for(lambda: self.queue.depth == 0), timeout)
            return self._acks is None or await self._acks.settle(timeout)
        except TimeoutError:
            return False
        finally:
            self._flush_waiters -= 1

    async def aclose(self, timeout: float = 10.0) -> None:
        """Graceful shutdown: write what is queued (up to ``timeout``), then close.

        Whatever InfluxDB did not accept by then stays in the durable queue and is written
        after the next start.
        """
        if self._closed:
            return
        self._closed = self._closing = True
        self._wakeup.set()
        if self._task is not None:
            try:
                await within(asyncio.shield(self._task), timeout)
            except TimeoutError:
                log.warning(
                    "closing with lines still queued; they are written after the next start",
                    extra={"depth": self.queue.depth, "last_error": self.last_error},
                )
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
        if self._acks is not None:
            await self._acks.aclose()
        if self._close_queue:
            await self.queue.close()
        if self._close_writer:
            await self.writer.aclose()

    async def __aenter__(self) -> BatchWriter:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ background task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            try:
                if self.queue.depth == 0:
                    await self._notify()
                    if self._closing:
                        return
                    self._wakeup.clear()
                    if self.queue.depth == 0:
                        await self._wakeup.wait()
                        self._batch_started = loop.time()
                    continue
                await self._gather(loop)
                self._batch_started = loop.time()
                rows = await self.queue.peek(self.max_batch)
                if rows:
                    await self._deliver(rows)
                await self._notify()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # e.g. the queue's disk: never let the writer die silently
                failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("batch writer loop failed; retrying")
                await asyncio.sleep(
                    _backoff(failures, self.backoff_base, self.backoff_cap, self._rng))

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait until a full batch is queued or ``flush_interval`` has passed since the first."""
        deadline = self._batch_started + self.flush_interval
        while self.queue.depth < self.max_batch and not self._closing and not self._flush_waiters:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wakeup.clear()
            if not await wait_set(self._wakeup, remaining):
                return

    async def _deliver(self, rows: list[tuple[int, bytes]]) -> None:
        try:
            lines, acked_at_ns = await self._write(rows)
        except WriteError as exc:
            await self._isolate(rows, exc)
            return
        # peek returns the oldest items and only this task acks, so every seq up to the
        # last one of the batch is in it: a cumulative ack is exact.
        await self.queue.ack(rows[-1][0])
        self._count_written(rows)
        if self._acks is not None:
            self._acks.record({stamp for line in lines if (stamp := stamp_of(line)) is not None},
                              acked_at_ns)

    async def _write(self, rows: list[tuple[int, bytes]]) -> tuple[list[str], int]:
        """Write until InfluxDB answers 204 (the lines, and when it answered); raise only a
        non-retryable `WriteError`."""
        lines = [item.decode() for _, item in rows]
        attempt = 0
        while True:
            try:
                await self.writer.write(lines)
                return lines, self._clock_ns()
            except WriteError as exc:
                self.write_errors += 1
                self.last_error = exc.message
                if not exc.retryable:
                    raise
                self.retries += 1
                log.warning(
                    "InfluxDB write failed; retrying",
                    extra={"error": exc.message, "status": exc.status, "lines": len(lines),
                           "attempt": attempt},
                )
                await asyncio.sleep(
                    _backoff(attempt, self.backoff_base, self.backoff_cap, self._rng))
                attempt += 1

    async def _isolate(self, rows: list[tuple[int, bytes]], error: WriteError) -> None:
        """Find the lines InfluxDB refuses: write halves, recurse into refused halves."""
        if len(rows) == 1 or (error.dropped is not None and error.dropped >= len(rows)):
            # One line, or InfluxDB says it refused every point: these are the bad ones.
            await self.queue.dead_letter((seq for seq, _ in rows), error.message)
            self.dead_lettered += len(rows)
            log.error(
                "InfluxDB refused lines; dead-lettered",
                extra={"lines": len(rows), "first_seq": rows[0][0], "reason": error.message},
            )
            return
        middle = len(rows) // 2
        for half in (rows[:middle], rows[middle:]):
            try:
                await self._write(half)
            except WriteError as exc:
                await self._isolate(half, exc)
                continue
            await self.queue.ack(seq for seq, _ in half)
            self._count_written(half)

    def _count_written(self, rows: list[tuple[int, bytes]]) -> None:
        self.points_written += len(rows)
        self.batches_written += 1
        self.last_write_ok_ns = self._clock_ns()
        if self.on_written is not None:
            try:
                self.on_written([item.decode() for _, item in rows])
            except Exception:  # an observer's bug must not stop (or replay) the write path
                log.exception("on_written callback failed")

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()
