"""The Home Assistant side: the load (``simulators.home_assistant.load`` profiles, fired as the
fake's Pacer fires them) and one websocket connection per client service with Home Assistant's
back-pressure.

Arrivals are micro-batches: every tick the source fires what the profile's integral says is
due (``floor(expected(t)) - fired``, the Pacer's rule, so counts follow the profile exactly) as
one job per client. A tick is ``5 / rate`` seconds, kept within [20 ms, ``max_tick``]:
``max_tick`` is 250 ms, or 0.5% of the plan's shortest hold when that is longer (at most 10 s),
so a busy run costs about 50 jobs per simulated second whatever its rate and a sparse 8-day
plan (17 events/min, holds of hours) one job per 10 s. Events are stamped at the end of their
tick: routing, the loss check and the monitor see them then; the waiting this adds is not
counted in their latency (see latency.py).

Each connection reads at ``read_per_event`` seconds per event (per client) while its client
runs. What it
cannot read yet waits in Home Assistant's send queue: at ``max_pending`` (4,096) messages, or
after ``pending_peak_seconds`` at or above ``pending_peak`` (1,024), Home Assistant closes the
connection and what was queued is gone (the ledger already lists those events as sent to it).
The client then reconnects after its backoff (0, 1, 2, 3, 4, 5, 5... x 1 s, from 0 again after
a connection that reached "subscribed"); events fired while it is not subscribed never reach it
live. Ingestion reads them back from history (``recovery_s`` after it subscribes again, its
connection's ``missed``); legacy loses them.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable

import simpy

from .books import Books
from .jobs import PRODUCTION, SHADOW, Job
from .network import Network
from .params import ModelParams
from .ports import Gen, HaClientPort, LoadProfile
from .routing import OwnershipShares, RoutingPlan
from .timeline import Signals

__all__ = ["Connection", "HaServer", "Source"]

BACKOFF_STEPS = (0, 1, 2, 3, 4, 5)


class Connection:
    """One client's websocket: subscribed or not, and Home Assistant's send queue for it."""

    def __init__(self, server: HaServer, client: HaClientPort) -> None:
        self.server = server
        self.client = client
        self.up = False
        self.down_since = 0.0
        self.backlog: deque[tuple[int, list[Job], float]] = deque()
        self.backlog_n = 0
        self.read_free_at = 0.0
        self.reader: simpy.Process | None = None
        self.keeper: simpy.Process | None = None
        self.peak_check = False
        self.dropped: simpy.Event | None = None
        self.backpressure_closes = 0
        # What this client missed and will read back from history (ingestion only): it
        # survives the client's restarts, as the outbox's durable mark does.
        self.missed: list[tuple[int, list[Job], float]] = []
        p = server.params
        self.read_per_event = p.read_per_event.get(client.name, p.client.read_per_event)

    # -- Home Assistant sends -------------------------------------------------------------------

    def send(self, n_total: int, jobs: list[Job], now: float) -> None:
        client = self.client
        server = self.server
        if (not self.backlog_n and not client.paused and now >= self.read_free_at
                and now >= server.stalled_until and not server.net.hangs(self.hop)):
            self.read_free_at = now + n_total * self.read_per_event
            extra = server.net.extra_latency(self.hop, server.rng.uniform) \
                if self.hop in server.net.hops else 0.0
            if extra:
                for job in jobs:
                    job.wait += extra
            client.on_events(n_total, jobs)
            return
        self.backlog.append((n_total, jobs, now))
        self.backlog_n += n_total
        p = server.params.ha
        if self.backlog_n >= p.max_pending:
            self.close(f"back-pressure: {p.max_pending} messages pending", backpressure=True)
            return
        if self.backlog_n >= p.pending_peak and not self.peak_check:
            self.peak_check = True
            server.env.process(self._check_peak())
        if self.reader is None:
            self.reader = server.env.process(self._read())

    @property
    def hop(self) -> str:
        return f"ha-{self.client.name}"

    def _check_peak(self) -> Gen:
        p = self.server.params.ha
        yield self.server.env.timeout(p.pending_peak_seconds)
        self.peak_check = False
        if self.up and self.backlog_n >= p.pending_peak:
            self.close(f"back-pressure: {p.pending_peak}+ messages pending for "
                       f"{p.pending_peak_seconds:g} s", backpressure=True)

    def _read(self) -> Gen:
        env = self.server.env
        client = self.client
        server = self.server
        try:
            while self.backlog and self.up:
                if client.paused and client.resumed is not None:
                    yield client.resumed
                    continue
                if env.now < server.stalled_until:
                    yield env.timeout(server.stalled_until - env.now)
                    continue
                if server.net.hangs(self.hop):
                    yield env.timeout(0.5)
                    continue
                n_total, jobs, queued = self.backlog.popleft()
                self.backlog_n -= n_total
                yield env.timeout(n_total * self.read_per_event)
                if not self.up or not client.running:
                    self._lost(jobs, "queued by Home Assistant for a connection that closed")
                    continue
                waited = env.now - queued
                for job in jobs:
                    job.wait += waited
                    job.enq = env.now
                self.read_free_at = env.now
                client.on_events(n_total, jobs)
        finally:
            self.reader = None

    @property
    def recovers(self) -> bool:
        return self.client.name == "ingestion"

    def miss(self, n_total: int, jobs: list[Job], now: float) -> bool:
        """Keep what the client did not get for its recovery; False if it has none."""
        if not self.recovers:
            return False
        self.missed.append((n_total, jobs, now))
        return True

    def _recover(self) -> Gen:
        yield self.server.env.timeout(self.server.params.client.recovery_s)
        if not self.up or not self.client.running:
            return  # the next subscription tries again
        missed, self.missed = self.missed, []
        for n_total, jobs, _ in missed:
            self.send(n_total, jobs, self.server.env.now)

    def _lost(self, jobs: list[Job], why: str) -> None:
        if self.recovers:
            self.missed.append((sum(j.n for j in jobs), jobs, self.server.env.now))
            return
        for job in jobs:
            if job.target == PRODUCTION:
                self.server.books.lost(job.n, f"{why} ({self.client.name})")

    def close(self, why: str, *, backpressure: bool = False) -> None:
        if not self.up:
            return
        self.up = False
        self.down_since = self.server.env.now
        if backpressure:
            self.backpressure_closes += 1
            self.server.signals.mark("fault", f"Home Assistant dropped {self.client.name}: {why}")
        for _, jobs, _ in self.backlog:
            self._lost(jobs, "dropped with Home Assistant's send queue" if backpressure
                       else "queued by Home Assistant for a connection that closed")
        self.backlog.clear()
        self.backlog_n = 0
        if self.dropped is not None and not self.dropped.triggered:
            self.dropped.succeed()
        self.server.signals.poke()

    # -- the client's reconnect loop ------------------------------------------------------------

    def keep(self, gen: int) -> Gen:
        env = self.server.env
        client = self.client
        cp = self.server.params.client
        attempt = 0
        try:
            while client.running and client.gen == gen:
                if client.paused and client.resumed is not None:
                    yield client.resumed
                    continue
                if self.up:
                    self.dropped = env.event()
                    yield self.dropped
                    self.dropped = None
                    attempt = 0  # it had reached subscribed: the next try is at once
                    continue
                if self.server.accepting(env.now) and not self.server.net.cut(self.hop):
                    yield env.timeout(cp.connect_s)
                    if client.running and client.gen == gen and not client.paused \
                            and self.server.accepting(env.now) \
                            and not self.server.net.cut(self.hop):
                        self.up = True
                        self.read_free_at = env.now
                        if self.missed:
                            env.process(self._recover())
                        self.server.signals.poke()
                        continue
                delay = cp.backoff_base * BACKOFF_STEPS[min(attempt, len(BACKOFF_STEPS) - 1)]
                attempt += 1
                yield env.timeout(max(delay, cp.connect_s))
        except simpy.Interrupt:
            return


class HaServer:
    """The fake Home Assistant's connections and its own faults (drop, restart, stall, refuse)."""

    def __init__(self, env: simpy.Environment, params: ModelParams, net: Network,
                 rng: random.Random, books: Books, signals: Signals) -> None:
        self.env = env
        self.params = params
        self.net = net
        self.rng = rng
        self.books = books
        self.signals = signals
        self.conns: dict[str, Connection] = {}
        self.refuse_until = 0.0
        self.stalled_until = 0.0

    def conn(self, client: HaClientPort) -> Connection:
        c = self.conns.get(client.name)
        if c is None:
            c = self.conns[client.name] = Connection(self, client)
        return c

    def accepting(self, now: float) -> bool:
        return now >= self.refuse_until

    def connect(self, client: HaClientPort) -> None:
        c = self.conn(client)
        c.down_since = min(c.down_since, client.started_at) if c.up else client.started_at
        c.keeper = self.env.process(c.keep(client.gen))
        client.procs.append(c.keeper)

    def disconnect(self, client: HaClientPort, why: str) -> None:
        c = self.conns.get(client.name)
        if c is not None:
            c.close(why)

    def subscribed(self, name: str) -> bool:
        c = self.conns.get(name)
        return c is not None and c.up

    def down_for(self, client: HaClientPort, now: float) -> float:
        c = self.conns.get(client.name)
        if c is None:
            return now - client.started_at
        return 0.0 if c.up else now - max(c.down_since, client.started_at)

    # -- faults ---------------------------------------------------------------------------------

    def drop_all(self, why: str) -> None:
        for c in list(self.conns.values()):
            c.close(why)

    def restart(self, downtime: float) -> None:
        self.refuse_until = max(self.refuse_until, self.env.now + downtime)
        self.drop_all("Home Assistant restarted")

    def refuse(self, seconds: float) -> None:
        self.refuse_until = max(self.refuse_until, self.env.now + seconds)

    def stall(self, seconds: float) -> None:
        self.stalled_until = max(self.stalled_until, self.env.now + seconds)


class Source:
    """The load: fires what the profile says is due, split by owner, to each subscriber."""

    def __init__(self, env: simpy.Environment, ha: HaServer, books: Books,
                 routing: RoutingPlan, rng: random.Random, poke: Callable[[], None],
                 shares: OwnershipShares) -> None:
        self.env = env
        self.ha = ha
        self.books = books
        self.routing = routing
        self.rng = rng
        self.poke = poke
        self.shares = shares
        self.profile: LoadProfile | None = None
        self.origin = 0.0
        self.offset = 0.0
        self.fired_total = 0
        self.jobs = 0
        self.scale = 1.0
        self.max_tick = 0.25
        self.proc: simpy.Process | None = None
        self._frozen: float | None = 0.0  # target while stopped (None: a profile runs)

    # Pacer's bookkeeping (simulators/home_assistant/load.py), on simulated time.
    def target(self, now: float) -> float:
        if self._frozen is not None:
            return self._frozen
        assert self.profile is not None  # a profile runs while the target is not frozen
        return self.offset + self.scale * self.profile.expected(now - self.origin)

    def set_profile(self, profile: LoadProfile | None, now: float) -> None:
        self.poke()
        carried = self.target(now)
        self.profile, self.origin, self.offset = profile, now, carried
        self._frozen = None if profile is not None else carried
        if self.proc is None:
            self.proc = self.env.process(self._run())
        elif self.proc.is_alive and self.proc.target is not None:
            self.proc.interrupt("profile")

    def _tick(self, now: float) -> float:
        """About 5 events per tick, within [20 ms, max_tick]."""
        if self.profile is None:
            return 1.0
        rate = self.scale * self.profile.rate_at(now - self.origin)
        if rate <= 0:
            return min(1.0, self.max_tick)
        return min(self.max_tick, max(0.02, 5.0 / rate))

    def _run(self) -> Gen:
        env = self.env
        while True:
            try:
                if self.profile is None:
                    yield env.event()  # until a profile interrupts
                    continue
                yield env.timeout(self._tick(env.now))
            except simpy.Interrupt:
                pass
            now = env.now
            due = math.floor(self.target(now) + 1e-9) - self.fired_total
            if due > 0:
                self.fired_total += due
                self.fire(due, now)
            if self.profile is not None and self.profile.finished(now - self.origin) \
                    and math.floor(self.target(now) + 1e-9) <= self.fired_total:
                self._frozen = self.target(now)
                self.profile = None

    def fire(self, n: int, now: float) -> None:
        self.jobs += 1
        ha, books = self.ha, self.books
        legacy_up = ha.subscribed("legacy")
        ingestion_up = ha.subscribed("ingestion")
        rec = books.fired(now, n, legacy_up or ingestion_up)
        entry = self.routing.entry_at(now)
        percent, shadow = (entry.new_percent, entry.shadow) if entry else (0, False)
        share = self.shares.share(percent)
        if share <= 0.0:
            n_new = 0
        elif share >= 1.0:
            n_new = n
        else:
            rnd = self.rng.random
            n_new = sum(1 for _ in range(n) if rnd() < share)
        n_legacy = n - n_new
        if legacy_up:
            jobs = [Job(n_legacy, now, now, PRODUCTION, rec)] if n_legacy else []
            ha.conns["legacy"].send(n, jobs, now)
        elif n_legacy:
            books.lost(n_legacy, "fired while legacy was not subscribed, not recovered")
        jobs = []
        if n_new:
            jobs.append(Job(n_new, now, now, PRODUCTION, rec))
        if shadow and n_legacy:
            jobs.append(Job(n_legacy, now, now, SHADOW, None))
        ingestion = ha.conns.get("ingestion")
        if ingestion_up:
            ha.conns["ingestion"].send(n, jobs, now)
        elif ingestion is not None:  # it subscribed once: it will read the gap back
            ingestion.miss(n, jobs, now)
        elif n_new:
            books.lost(n_new, "fired while ingestion was not subscribed, not recovered")
