"""The data-storage service: POSTs from enrichment are accepted into a durable queue per
database (the event's ``stored_at`` is stamped here), and a ``BatchWriter`` per database
gathers ``flush_interval``, writes up to ``max_batch`` and retries with jittered backoff
forever."""

from __future__ import annotations

import random
from collections.abc import Callable

import simpy

from .books import Books
from .breaker import backoff_delay
from .influx import Influx
from .jobs import PRODUCTION, Job
from .params import ModelParams
from .ports import Gen
from .queues import Queue, trigger_in
from .service import Service

__all__ = ["BatchWriter", "Storage"]


class BatchWriter:
    """pipeline/common/influx.py's BatchWriter for one database."""

    def __init__(self, storage: Storage, target: int) -> None:
        self.st = storage
        self.target = target
        self.path = "new" if target == PRODUCTION else "shadow"
        self.queue = Queue()  # durable
        self.wake: simpy.Event | None = None
        self.inflight: list[Job] | None = None
        self.first_put = 0.0
        self.reset()

    def reset(self) -> None:
        now = self.st.env.now
        self.written = 0
        self.write_errors = 0
        self.last_progress = now
        self.failing_since: float | None = None

    def put(self, job: Job) -> None:
        self.queue.put(job)
        if self.wake is not None and not self.wake.triggered:
            self.first_put = self.st.env.now
            trigger_in(self.st.env, self.wake, self.st.params.storage.flush_interval)

    def run(self) -> Gen:
        st, env = self.st, self.st.env
        p = st.params.storage
        books, influx, uniform = st.books, st.influx, st.rng.uniform
        started = env.now
        try:
            while True:
                yield from st.frozen()
                if not self.queue.depth:
                    self.last_progress = env.now
                    self.wake = env.event()
                    yield self.wake
                    self.wake = None
                    started = self.first_put  # its batch window has passed already
                    continue
                if self.queue.depth < p.max_batch:
                    left = started + p.flush_interval - env.now
                    if left > 0:
                        yield env.timeout(left)
                        yield from st.frozen()
                started = env.now
                batch, n = self.queue.take(p.max_batch)
                self.inflight = batch
                attempt = 0
                while True:
                    ok = yield from influx.write("storage-influxdb", "influx_storage", n,
                                                 p.influx_timeout)
                    yield from st.frozen()
                    if ok:
                        break
                    self.write_errors += 1
                    if self.failing_since is None:
                        self.failing_since = env.now
                    st.poke()
                    yield env.timeout(backoff_delay(attempt, p.backoff_base, p.retry_cap,
                                                    uniform))
                    attempt += 1
                self.inflight = None
                now = env.now
                for job in batch:
                    books.written(job, self.path, now)
                self.written += n
                self.last_progress = now
                self.failing_since = None
                started = env.now
        except simpy.Interrupt:
            if self.inflight:
                self.queue.put_back(self.inflight)
                self.inflight = None
            return

    def depth(self) -> int:
        return self.queue.depth + sum(j.n for j in self.inflight or ())


class Storage(Service):
    def __init__(self, env: simpy.Environment, params: ModelParams, rng: random.Random,
                 poke: Callable[[], None], *, books: Books, influx: Influx,
                 name: str = "storage") -> None:
        super().__init__(env, name, params, rng, poke)
        self.books = books
        self.influx = influx
        self.writers = (BatchWriter(self, 0), BatchWriter(self, 1))

    def reset_counters(self) -> None:
        self.c = {"events_received_total": 0.0}
        if hasattr(self, "writers"):
            for w in self.writers:
                w.reset()

    def on_ready(self) -> None:
        for w in self.writers:
            self.spawn(w.run())

    def on_stopping(self) -> Gen:
        deadline = self.env.now + 8.0
        while any(w.depth() for w in self.writers) and self.env.now < deadline \
                and self.running and self.influx.listening():
            yield self.env.timeout(0.05)

    def handling(self, n: int) -> float:
        return self.sample("storage", n)

    def accept(self, batch: list[Job], now: float) -> None:
        self.c["events_received_total"] += sum(j.n for j in batch)
        writers = self.writers
        for job in batch:
            job.stamp = now
            job.enq = now
            writers[job.target].put(job)

    def healthy(self, now: float) -> bool:
        if not super().healthy(now):
            return False
        p = self.params.storage
        for w in self.writers:
            if w.failing_since is not None and now - w.failing_since > p.unreachable_after_s:
                return False
            if w.depth() and now - w.last_progress > p.stalled_after_s:
                return False
        influx = self.influx
        return not (not influx.listening() and now - influx.down_since
                    > p.unreachable_after_s)

    def queue_depth(self) -> int:
        return sum(w.depth() for w in self.writers)

    def error_total(self) -> float:
        return float(sum(w.write_errors for w in self.writers))

    def metrics(self) -> dict[str, float]:
        return {**super().metrics(),
                "cutover_influx_write_errors_total": float(sum(w.write_errors
                                                               for w in self.writers)),
                "cutover_events_processed_total": float(sum(w.written for w in self.writers)),
                "cutover_queue_depth": float(self.queue_depth())}
