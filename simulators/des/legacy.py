"""The legacy monolith's write path: its in-memory buffer (bounded: beyond it events are
dropped), written every ``flush_interval`` in batches; a failed write is retried
``write_retries`` times with a doubling backoff and then dropped. A crash loses the buffer."""

from __future__ import annotations

import random
from collections.abc import Callable

import simpy

from .books import Books
from .influx import Influx
from .jobs import PRODUCTION, Job
from .params import ModelParams
from .ports import Gen, HaLink
from .queues import Queue, trigger_in
from .service import HaClient

__all__ = ["Legacy"]


class Legacy(HaClient):
    def __init__(self, env: simpy.Environment, params: ModelParams, rng: random.Random,
                 poke: Callable[[], None], *, ha: HaLink, books: Books, influx: Influx,
                 name: str = "legacy") -> None:
        super().__init__(env, name, params, rng, poke, ha)
        self.books = books
        self.influx = influx
        self.buffer = Queue()
        self.wake: simpy.Event | None = None
        self.inflight: list[Job] = []
        self.last_progress = 0.0
        self.closing = False

    def reset_counters(self) -> None:
        self.c = {"events_received_total": 0.0, "events_processed_total": 0.0,
                  "events_skipped_total": 0.0, "events_dropped_total": 0.0,
                  "influx_write_failures_total": 0.0}

    def on_ready(self) -> None:
        self.closing = False
        self.last_progress = self.env.now
        self.spawn(self._writer())
        super().on_ready()

    def on_killed(self) -> None:
        super().on_killed()
        lost = self.buffer.clear() + self.inflight
        self.inflight = []
        for job in lost:
            if job.target == PRODUCTION:
                self.books.lost(job.n, "in legacy's memory when it crashed")

    def on_stopping(self) -> Gen:
        """Stop reading Home Assistant, write the buffer for up to shutdown_flush_s."""
        self.ha.disconnect(self, "client stopping")
        self.closing = True
        if self.wake is not None and not self.wake.triggered:
            self.wake.succeed()
        deadline = self.env.now + self.params.legacy.shutdown_flush_s
        while (self.buffer.depth or self.inflight) and self.env.now < deadline and self.running:
            yield self.env.timeout(0.05)
        for job in self.buffer.clear():
            self.books.lost(job.n, "legacy's buffer at shutdown")
            self.c["events_dropped_total"] += job.n

    def on_events(self, n_total: int, jobs: list[Job]) -> None:
        c = self.c
        c["events_received_total"] += n_total
        c["events_skipped_total"] += n_total - sum(job.n for job in jobs)
        own = 0
        limit = self.params.legacy.max_buffer
        for job in jobs:
            room = limit - self.buffer.depth
            if job.n > room:
                dropped = job.split(job.n - room) if room > 0 else job
                c["events_dropped_total"] += dropped.n
                self.books.lost(dropped.n, "legacy's buffer full (buffer_full)")
                self.poke()
                if room <= 0:
                    continue
            own += job.n
            self.buffer.put(job)
        if own and self.wake is not None and not self.wake.triggered:
            # The batch window opens with the first event: the writer wakes when it closes.
            trigger_in(self.env, self.wake, 0.0 if self.closing
                       else self.params.legacy.flush_interval)

    def _writer(self) -> Gen:
        env, p = self.env, self.params.legacy
        influx, books = self.influx, self.books
        try:
            while True:
                yield from self.frozen()
                if not self.buffer.depth:
                    self.last_progress = env.now
                    if self.closing:
                        return
                    self.wake = env.event()
                    yield self.wake
                    self.wake = None
                    yield from self.frozen()
                elif not self.closing and self.buffer.depth < p.batch_size:
                    yield env.timeout(p.flush_interval)
                    yield from self.frozen()
                if not self.buffer.depth:
                    continue
                batch, n = self.buffer.take(p.batch_size)
                self.inflight = batch
                start = env.now
                for job in batch:
                    job.wait += max(0.0, start - job.enq - p.flush_interval)
                    job.stamp = start
                ok = False
                for attempt in range(p.write_retries + 1):
                    ok = yield from influx.write("legacy-influxdb", "influx_legacy", n,
                                                 p.influx_timeout)
                    yield from self.frozen()
                    if ok:
                        break
                    self.c["influx_write_failures_total"] += 1
                    self.poke()
                    if attempt < p.write_retries:
                        yield env.timeout(p.retry_backoff * 2 ** attempt)
                        yield from self.frozen()
                self.inflight = []
                if ok:
                    now = env.now
                    for job in batch:
                        books.written(job, "legacy", now)
                    self.c["events_processed_total"] += n
                    self.last_progress = now
                else:
                    self.c["events_dropped_total"] += n
                    books.lost(n, "legacy's write failed after its retries "
                                  "(influx_unavailable)")
                    self.poke()
        except simpy.Interrupt:
            return

    def healthy(self, now: float) -> bool:
        if not super().healthy(now):
            return False
        if self.ha_down_for(now) > self.params.client.down_after_s:
            return False
        depth = self.buffer.depth + sum(j.n for j in self.inflight)
        return not (depth and now - self.last_progress > self.params.client.stalled_after_s)

    def queue_depth(self) -> int:
        return self.buffer.depth + sum(j.n for j in self.inflight)

    def error_total(self) -> float:
        return self.c["events_dropped_total"] + self.c["influx_write_failures_total"]

    def received_total(self) -> float:
        return self.c["events_received_total"]
