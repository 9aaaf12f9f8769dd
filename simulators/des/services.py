"""The services as SimPy processes: each one a server with a service-time distribution, its
queues, batching, retries and breaker as the real code has them.

- ``Influx``: the database; a write takes ``influx_*`` service time, fails at once while it is
  down, hangs (until the caller's timeout) while it is paused.
- ``Legacy``: the monolith's in-memory buffer (bounded: beyond it events are dropped), written
  every ``flush_interval`` in batches; a failed write is retried ``write_retries`` times with a
  doubling backoff and then dropped. A crash loses the buffer.
- ``Ingestion``: websocket -> group commit into the durable outbox (what is not committed yet
  is lost on a crash) -> ``Forwarder`` to enrichment.
- ``Enrichment``: POSTs accepted into its durable outbox -> ``Forwarder`` to storage.
- ``Storage``: POSTs accepted into a durable queue per database (the event's ``stored_at`` is
  stamped here) -> a ``BatchWriter`` per database: gather ``flush_interval``, write up to
  ``max_batch``, retry with jittered backoff forever.
- ``Forwarder``: drains an outbox in order, ``batch`` events per POST, retries with backoff and
  jitter behind a ``Breaker``; never drops (the ack comes after the 2xx).

Every process is a generator on the one Environment; a crash interrupts the service's
processes (what they held in memory is lost, what was durable stays), a pause freezes them (a
step in flight completes but its effect waits for the resume). Counters reset when a service
starts again, as a new process's Prometheus counters do.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy
from simpy.events import NORMAL

from .breaker import Breaker, backoff_delay
from .jobs import PRODUCTION, Job
from .network import OK, PAUSED, REFUSED

if TYPE_CHECKING:
    from .model import Model

__all__ = ["Admin", "Enrichment", "Forwarder", "Influx", "Ingestion", "Legacy", "Service",
           "Storage", "Weather"]

Gen = Generator[Any, Any, Any]
SENT, BREAKER, FAILED = 0, 1, 2
INF = math.inf


def trigger_in(env: simpy.Environment, event: simpy.Event, delay: float) -> None:
    """Succeed ``event`` ``delay`` seconds from now (one scheduled event, as a Timeout is):
    how an idle writer's wake-up and its batch window become a single step."""
    event._ok = True  # noqa: SLF001 - what Timeout.__init__ does
    event._value = None  # noqa: SLF001
    env.schedule(event, NORMAL, delay)


class Queue:
    """A FIFO of jobs with an event count; durable ones outlive their service's crashes."""

    __slots__ = ("jobs", "depth")

    def __init__(self) -> None:
        self.jobs: deque[Job] = deque()
        self.depth = 0

    def put(self, job: Job) -> None:
        self.jobs.append(job)
        self.depth += job.n

    def take(self, limit: int) -> tuple[list[Job], int]:
        """Up to ``limit`` events from the head, splitting a job if needed."""
        out: list[Job] = []
        n = 0
        jobs = self.jobs
        while jobs and n < limit:
            job = jobs[0]
            if n + job.n <= limit:
                jobs.popleft()
                out.append(job)
                n += job.n
            else:
                part = job.split(limit - n)
                out.append(part)
                n += part.n
        self.depth -= n
        return out, n

    def put_back(self, batch: list[Job]) -> None:
        """Return a batch that was not delivered to the head, in order."""
        for job in reversed(batch):
            self.jobs.appendleft(job)
            self.depth += job.n

    def clear(self) -> list[Job]:
        jobs = list(self.jobs)
        self.jobs.clear()
        self.depth = 0
        return jobs


class Service:
    """Lifecycle shared by every part: start (listening after its start-up time), graceful
    stop, crash, pause and resume; its processes are (re)spawned on each start."""

    def __init__(self, model: Model, name: str) -> None:
        self.m = model
        self.env: simpy.Environment = model.env
        self.name = name
        self.running = False
        self.ready_at = INF
        self.paused = False
        self.resumed: simpy.Event | None = None
        self.gen = 0
        self.procs: list[simpy.Process] = []
        self.started_at = 0.0
        self.starts = 0
        self.reset_counters()

    # -- lifecycle ----------------------------------------------------------------------------

    def listening(self) -> bool:
        return self.running and self.env.now >= self.ready_at

    def start(self) -> None:
        if self.running:
            return
        self.running = True
        self.paused = False
        self.gen += 1
        self.started_at = self.env.now
        p = self.m.params
        took = (p.restart_s if self.starts else p.startup_s).get(self.name, 1.0)
        self.starts += 1
        self.ready_at = self.env.now + took
        self.reset_counters()
        self.env.process(self._boot(self.gen))
        self.m.poke()

    def _boot(self, gen: int) -> Gen:
        yield self.env.timeout(max(0.0, self.ready_at - self.env.now))
        if gen == self.gen and self.running:
            self.on_ready()
            self.m.poke()

    def kill(self) -> None:
        """A crash (SIGKILL): processes stop where they are; memory is lost."""
        if not self.running:
            return
        self.running = False
        self.ready_at = INF
        self.gen += 1
        if self.paused:
            self.paused = False
            ev, self.resumed = self.resumed, None
            if ev is not None and not ev.triggered:
                ev.succeed()
        for proc in self.procs:
            if proc.is_alive:
                proc.interrupt("kill")
        self.procs = []
        self.on_killed()
        self.m.poke()

    def stop(self) -> Gen:
        """Graceful stop (a process generator): flush what the service may flush, then end."""
        if self.running:
            yield from self.on_stopping()
            self.kill()

    def pause(self) -> None:
        if self.running and not self.paused:
            self.paused = True
            self.resumed = self.env.event()
            self.m.poke()

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            ev, self.resumed = self.resumed, None
            if ev is not None:
                ev.succeed()
            self.m.poke()

    def frozen(self) -> Gen:
        """Wait while paused (call after a step whose effect must wait for SIGCONT)."""
        while self.paused and self.resumed is not None:
            yield self.resumed

    def spawn(self, gen: Gen) -> None:
        self.procs.append(self.env.process(gen))

    # -- what a subclass provides ---------------------------------------------------------------

    def reset_counters(self) -> None:
        self.c: dict[str, float] = {}

    def on_ready(self) -> None:
        pass

    def on_killed(self) -> None:
        pass

    def on_stopping(self) -> Gen:
        return
        yield  # pragma: no cover - a generator that does nothing

    def healthy(self, now: float) -> bool:
        return self.listening() and not self.paused

    def queue_depth(self) -> int:
        return 0

    def breaker_open(self) -> bool:
        return False

    def error_total(self) -> float:
        return 0.0

    def received_total(self) -> float:
        return 0.0

    def metrics(self) -> dict[str, float]:
        return {f"cutover_{k}": v for k, v in self.c.items()}

    # -- helpers -------------------------------------------------------------------------------

    def sample(self, key: str, n: int) -> float:
        return self.m.params.service_times[key].sample(n, self.m.rng.gauss(0.0, 1.0))


class Influx(Service):
    def healthy(self, now: float) -> bool:
        return self.listening() and not self.paused

    def write(self, caller: Service, hop: str, key: str, n: int, timeout: float) -> Gen:
        """One /write of ``n`` points; returns True on 204."""
        env, m = self.env, self.m
        outcome = m.net.outcome(hop, self)
        if outcome == OK:
            gen = self.gen
            yield env.timeout(self.sample(key, n) + m.net.extra_latency(hop, m.rng.uniform))
            return self.gen == gen and self.listening()
        if outcome == REFUSED:
            yield env.timeout(m.params.http.refused_s)
            return False
        if outcome == PAUSED and self.resumed is not None:
            gen = self.gen
            started = env.now
            yield self.resumed | env.timeout(timeout)
            left = timeout - (env.now - started)
            if self.paused or self.gen != gen or not self.listening() or left <= 0:
                return False
            yield env.timeout(min(left, self.sample(key, n)))
            return self.listening() and self.gen == gen
        yield env.timeout(timeout)  # HANG
        return False


class HaClient(Service):
    """A Home Assistant client service (legacy, ingestion): its connection is in source.py."""

    def on_ready(self) -> None:
        self.m.ha.connect(self)

    def on_killed(self) -> None:
        self.m.ha.disconnect(self, "client stopped")

    def on_events(self, n_total: int, jobs: list[Job]) -> None:
        raise NotImplementedError

    def ha_down_for(self, now: float) -> float:
        return self.m.ha.down_for(self, now)


class Legacy(HaClient):
    def __init__(self, model: Model, name: str = "legacy") -> None:
        super().__init__(model, name)
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
        self.spawn(self._writer(self.gen))
        super().on_ready()

    def on_killed(self) -> None:
        super().on_killed()
        lost = self.buffer.clear() + self.inflight
        self.inflight = []
        for job in lost:
            if job.target == PRODUCTION:
                self.m.books.lost(job.n, "in legacy's memory when it crashed")

    def on_stopping(self) -> Gen:
        """Stop reading Home Assistant, write the buffer for up to shutdown_flush_s."""
        self.m.ha.disconnect(self, "client stopping")
        self.closing = True
        if self.wake is not None and not self.wake.triggered:
            self.wake.succeed()
        deadline = self.env.now + self.m.params.legacy.shutdown_flush_s
        while (self.buffer.depth or self.inflight) and self.env.now < deadline and self.running:
            yield self.env.timeout(0.05)
        for job in self.buffer.clear():
            self.m.books.lost(job.n, "legacy's buffer at shutdown")
            self.c["events_dropped_total"] += job.n

    def on_events(self, n_total: int, jobs: list[Job]) -> None:
        c = self.c
        c["events_received_total"] += n_total
        c["events_skipped_total"] += n_total - sum(job.n for job in jobs)
        own = 0
        limit = self.m.params.legacy.max_buffer
        for job in jobs:
            room = limit - self.buffer.depth
            if job.n > room:
                dropped = job.split(job.n - room) if room > 0 else job
                c["events_dropped_total"] += dropped.n
                self.m.books.lost(dropped.n, "legacy's buffer full (buffer_full)")
                self.m.poke()
                if room <= 0:
                    continue
            own += job.n
            self.buffer.put(job)
        if own and self.wake is not None and not self.wake.triggered:
            # The batch window opens with the first event: the writer wakes when it closes.
            trigger_in(self.env, self.wake, 0.0 if self.closing
                       else self.m.params.legacy.flush_interval)

    def _writer(self, gen: int) -> Gen:
        env, p = self.env, self.m.params.legacy
        influx = self.m.influx
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
                    ok = yield from influx.write(self, "legacy-influxdb", "influx_legacy", n,
                                                 p.influx_timeout)
                    yield from self.frozen()
                    if ok:
                        break
                    self.c["influx_write_failures_total"] += 1
                    self.m.poke()
                    if attempt < p.write_retries:
                        yield env.timeout(p.retry_backoff * 2 ** attempt)
                        yield from self.frozen()
                self.inflight = []
                if ok:
                    now = env.now
                    for job in batch:
                        self.m.books.written(job, "legacy", now)
                    self.c["events_processed_total"] += n
                    self.last_progress = now
                else:
                    self.c["events_dropped_total"] += n
                    self.m.books.lost(n, "legacy's write failed after its retries "
                                         "(influx_unavailable)")
                    self.m.poke()
        except simpy.Interrupt:
            return

    def healthy(self, now: float) -> bool:
        if not super().healthy(now):
            return False
        if self.ha_down_for(now) > self.m.params.client.down_after_s:
            return False
        depth = self.buffer.depth + sum(j.n for j in self.inflight)
        return not (depth and now - self.last_progress > self.m.params.client.stalled_after_s)

    def queue_depth(self) -> int:
        return self.buffer.depth + sum(j.n for j in self.inflight)

    def error_total(self) -> float:
        return self.c["events_dropped_total"] + self.c["influx_write_failures_total"]

    def received_total(self) -> float:
        return self.c["events_received_total"]


class Forwarder:
    """pipeline/common/httpclient.py's Forwarder + ServiceClient, as one process."""

    def __init__(self, service: Service, receiver: str, hop: str) -> None:
        self.svc = service
        self.receiver_name = receiver
        self.hop = hop
        self.outbox = Queue()  # durable: survives the service's crashes
        self.wake: simpy.Event | None = None
        self.inflight: list[Job] | None = None
        self.reset()

    def reset(self) -> None:
        http = self.svc.m.params.http
        self.breaker = Breaker(http.breaker_failures, http.breaker_reset_s,
                               clock=lambda: self.svc.env.now, on_change=self._changed)
        self.failures = 0  # batches that could not be delivered (cutover_forward_failures_total)
        self.breaker_waits = 0
        self.forwarded = 0
        self.last_ok = self.svc.env.now
        self.last_progress = self.svc.env.now
        self.consecutive = 0

    def _changed(self, state: str) -> None:
        self.svc.m.poke()

    def put(self, job: Job) -> None:
        self.outbox.put(job)
        if self.wake is not None and not self.wake.triggered:
            self.wake.succeed()

    def run(self, gen: int) -> Gen:
        svc, env = self.svc, self.svc.env
        http = svc.m.params.http
        receiver = svc.m.services[self.receiver_name]
        uniform = svc.m.rng.uniform
        try:
            while True:
                yield from svc.frozen()
                if not self.outbox.depth:
                    self.last_progress = env.now
                    self.wake = env.event()
                    yield self.wake
                    self.wake = None
                    continue
                batch, n = self.outbox.take(http.batch)
                self.inflight = batch
                outcome, began = yield from self._post(receiver, n)
                yield from svc.frozen()
                self.inflight = None
                if outcome == SENT:
                    for job in batch:
                        job.wait += max(0.0, began - job.enq)
                    receiver.accept(batch, env.now)
                    self.forwarded += n
                    self.last_ok = self.last_progress = env.now
                    self.consecutive = 0
                    continue
                self.outbox.put_back(batch)
                if outcome == BREAKER:
                    self.breaker_waits += 1
                    yield env.timeout(max(self.breaker.retry_after(), 0.01))
                else:
                    self.failures += 1
                    self.consecutive += 1
                    svc.m.poke()
                    yield env.timeout(backoff_delay(self.consecutive, http.backoff_base,
                                                    http.backoff_max, uniform))
        except simpy.Interrupt:
            if self.inflight:
                self.outbox.put_back(self.inflight)
                self.inflight = None
            return

    def _post(self, receiver: Service, n: int) -> Gen:
        """ServiceClient.post_json: returns (SENT | BREAKER | FAILED, start of the attempt)."""
        svc, env = self.svc, self.svc.env
        m = svc.m
        http = m.params.http
        breaker = self.breaker
        for attempt in range(http.retries + 1):
            if not breaker.allow():
                return BREAKER, env.now
            began = env.now
            outcome = m.net.outcome(self.hop, receiver)
            ok = False
            if outcome == OK:
                rgen = receiver.gen
                yield env.timeout(http.rtt + m.net.extra_latency(self.hop, m.rng.uniform)
                                  + receiver.handling(n))
                ok = receiver.gen == rgen and receiver.listening() and not receiver.paused
                if not ok and receiver.paused and receiver.gen == rgen:
                    ok = yield from self._wait_resume(receiver, began, n)
            elif outcome == REFUSED:
                yield env.timeout(http.refused_s)
            elif outcome == PAUSED:
                ok = yield from self._wait_resume(receiver, began, n)
            else:  # HANG
                yield env.timeout(http.read_timeout)
            if ok:
                breaker.record_success()
                return SENT, began
            breaker.record_failure()
            if attempt == http.retries:
                break
            yield env.timeout(backoff_delay(attempt, http.backoff_base, http.backoff_max,
                                            m.rng.uniform))
        return FAILED, env.now

    def _wait_resume(self, receiver: Service, began: float, n: int) -> Gen:
        env = self.svc.env
        timeout = self.svc.m.params.http.read_timeout
        rgen = receiver.gen
        left = timeout - (env.now - began)
        if receiver.resumed is not None and left > 0:
            yield receiver.resumed | env.timeout(left)
        if receiver.paused or receiver.gen != rgen or not receiver.listening():
            if env.now - began < timeout:
                yield env.timeout(max(0.0, timeout - (env.now - began)))
            return False
        yield env.timeout(receiver.handling(n))
        return receiver.gen == rgen and receiver.listening()


class Ingestion(HaClient):
    def __init__(self, model: Model, name: str = "ingestion") -> None:
        super().__init__(model, name)
        self.pending = Queue()  # in memory until the group commit
        self.committing: list[Job] = []
        self.wake: simpy.Event | None = None
        self.forwarder = Forwarder(self, "enrichment", "ingestion-enrichment")

    def reset_counters(self) -> None:
        self.c = {"events_received_total": 0.0, "events_skipped_total": 0.0,
                  "outbox_commit_errors_total": 0.0}
        if hasattr(self, "forwarder"):
            self.forwarder.reset()

    def on_ready(self) -> None:
        self.spawn(self._intake(self.gen))
        self.spawn(self.forwarder.run(self.gen))
        super().on_ready()

    def on_killed(self) -> None:
        super().on_killed()
        # Not yet durable, so after the durable mark: the restart reads them back from history.
        lost = self.pending.clear() + self.committing
        if lost:
            self.m.ha.conn(self).missed.append((sum(j.n for j in lost), lost, self.env.now))
        self.committing = []

    def on_stopping(self) -> Gen:
        self.m.ha.disconnect(self, "client stopping")
        # Graceful: what is pending is committed, the forwarder keeps going a little.
        for job in self.pending.clear():
            self.forwarder.put(job)
        deadline = self.env.now + 5.0
        while self.forwarder.outbox.depth and self.env.now < deadline and self.running \
                and self.forwarder.breaker.state == "closed":
            yield self.env.timeout(0.05)

    def on_events(self, n_total: int, jobs: list[Job]) -> None:
        self.c["events_received_total"] += n_total
        kept = 0
        for job in jobs:
            kept += job.n
            self.pending.put(job)
        self.c["events_skipped_total"] += n_total - kept
        if kept and self.wake is not None and not self.wake.triggered:
            self.wake.succeed()

    def _intake(self, gen: int) -> Gen:
        env = self.env
        limit = self.m.params.commit_max_group
        try:
            while True:
                yield from self.frozen()
                if not self.pending.depth:
                    self.wake = env.event()
                    yield self.wake
                    self.wake = None
                    continue
                start = env.now
                group, n = self.pending.take(limit)
                self.committing = group
                yield env.timeout(self.sample("ingestion", n))
                yield from self.frozen()
                self.committing = []
                for job in group:
                    job.wait += max(0.0, start - job.enq)
                    job.enq = env.now
                    self.forwarder.put(job)
        except simpy.Interrupt:
            return

    def healthy(self, now: float) -> bool:
        if not super().healthy(now):
            return False
        if self.ha_down_for(now) > self.m.params.client.down_after_s:
            return False
        fwd = self.forwarder
        return not (fwd.outbox.depth and now - fwd.last_progress
                    > self.m.params.client.stalled_after_s)

    def queue_depth(self) -> int:
        inflight = sum(j.n for j in self.forwarder.inflight or ())
        return self.forwarder.outbox.depth + inflight + self.pending.depth + sum(
            j.n for j in self.committing)

    def breaker_open(self) -> bool:
        return self.forwarder.breaker.is_open

    def error_total(self) -> float:
        return self.forwarder.failures + self.c["outbox_commit_errors_total"]

    def received_total(self) -> float:
        return self.c["events_received_total"]

    def metrics(self) -> dict[str, float]:
        return {**super().metrics(), "cutover_forward_failures_total": self.forwarder.failures,
                "cutover_events_processed_total": self.forwarder.forwarded,
                "cutover_breaker_open": 1.0 if self.breaker_open() else 0.0,
                "cutover_queue_depth": float(self.queue_depth())}


class Enrichment(Service):
    def __init__(self, model: Model, name: str = "enrichment") -> None:
        super().__init__(model, name)
        self.forwarder = Forwarder(self, "storage", "enrichment-storage")

    def reset_counters(self) -> None:
        self.c = {"events_received_total": 0.0}
        if hasattr(self, "forwarder"):
            self.forwarder.reset()

    def on_ready(self) -> None:
        self.spawn(self.forwarder.run(self.gen))

    def on_stopping(self) -> Gen:
        deadline = self.env.now + 5.0
        while self.forwarder.outbox.depth and self.env.now < deadline and self.running \
                and self.forwarder.breaker.state == "closed":
            yield self.env.timeout(0.05)

    def handling(self, n: int) -> float:
        return self.sample("enrichment", n)

    def accept(self, batch: list[Job], now: float) -> None:
        self.c["events_received_total"] += sum(j.n for j in batch)
        for job in batch:
            job.enq = now
            self.forwarder.put(job)

    def healthy(self, now: float) -> bool:
        if not super().healthy(now):
            return False
        fwd = self.forwarder
        return not (fwd.outbox.depth and now - fwd.last_ok
                    > self.m.params.storage.enrichment_stall_s)

    def queue_depth(self) -> int:
        return self.forwarder.outbox.depth + sum(j.n for j in self.forwarder.inflight or ())

    def breaker_open(self) -> bool:
        return self.forwarder.breaker.is_open

    def error_total(self) -> float:
        return float(self.forwarder.failures)

    def metrics(self) -> dict[str, float]:
        return {**super().metrics(), "cutover_forward_failures_total": self.forwarder.failures,
                "cutover_events_processed_total": self.forwarder.forwarded,
                "cutover_breaker_open": 1.0 if self.breaker_open() else 0.0,
                "cutover_queue_depth": float(self.queue_depth())}


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
            trigger_in(self.st.env, self.wake, self.st.m.params.storage.flush_interval)

    def run(self, gen: int) -> Gen:
        st, env = self.st, self.st.env
        p = st.m.params.storage
        books, influx, uniform = st.m.books, st.m.influx, st.m.rng.uniform
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
                    ok = yield from influx.write(st, "storage-influxdb", "influx_storage", n,
                                                 p.influx_timeout)
                    yield from st.frozen()
                    if ok:
                        break
                    self.write_errors += 1
                    if self.failing_since is None:
                        self.failing_since = env.now
                    st.m.poke()
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
    def __init__(self, model: Model, name: str = "storage") -> None:
        super().__init__(model, name)
        self.writers = (BatchWriter(self, 0), BatchWriter(self, 1))

    def reset_counters(self) -> None:
        self.c = {"events_received_total": 0.0}
        if hasattr(self, "writers"):
            for w in self.writers:
                w.reset()

    def on_ready(self) -> None:
        for w in self.writers:
            self.spawn(w.run(self.gen))

    def on_stopping(self) -> Gen:
        deadline = self.env.now + 8.0
        while any(w.depth() for w in self.writers) and self.env.now < deadline \
                and self.running and self.m.influx.listening():
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
        p = self.m.params.storage
        for w in self.writers:
            if w.failing_since is not None and now - w.failing_since > p.unreachable_after_s:
                return False
            if w.depth() and now - w.last_progress > p.stalled_after_s:
                return False
        influx = self.m.influx
        return not (not influx.listening() and now - self.m.influx_down_since
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


class Admin(Service):
    pass


class Weather(Service):
    pass
