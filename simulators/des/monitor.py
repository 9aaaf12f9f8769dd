"""The harness's monitor, on simulated time: once a second it "scrapes" every running service
and keeps the run's evidence, exactly as ``harness/runner/monitor.py`` computes it.

- errors: every service's error counters (drops, failed forwards, failed writes), from its
  last successful scrape (a stopped service keeps its last values; a restarted one starts at
  0 again), plus the events that piled up behind an open breaker (queue growth between two
  scrapes of a new-path service whose breaker is open);
- received: events received by legacy and ingestion; the new pipeline's figures apart;
- stored: production events seen live (written within ``lookback`` of their time_fired);
- health per service (absent when it is not running or frozen, as the runtimes report a
  paused service: ``service_unavailable`` reads absence as down), queue depth.

Ticks older than the longest window anything looks at are dropped (the run's first tick and
each traffic step's anchors are kept), and the timeline keeps at most ``max_samples`` samples
(one per ``sample_every`` seconds): an 8-day plan has 700,000 ticks.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import simpy

from harness.scenario.rules.evidence import CounterWindow
from harness.scenario.topology import NEW_PATH

from .books import Books
from .outcome import Sample
from .params import PIPELINE, MonitorParams
from .ports import Gen, PendingTriggers
from .service import Service
from .services import Services
from .source import HaServer
from .timeline import RunState, Signals

__all__ = ["Monitor", "Sample", "Tick", "Window"]

INGRESS = ("legacy", "ingestion")


@dataclass(slots=True)
class Tick:
    t_s: float
    fired_subscribed: int
    stored: int
    errors: float
    received: float
    new_errors: float
    new_received: float
    healthy: dict[str, bool]
    queue_depth: int
    stalled_cum: float = 0.0  # seconds stalled since the run began, up to this tick




@dataclass(slots=True)
class Window(CounterWindow[Tick]):
    books: Books
    snap: dict[str, dict[int, float]] | None = None  # a gate's: points since its step began

    def p95_ms(self, paths: tuple[str, ...]) -> float | None:
        q = self.books.window_quantile(paths, self.start_s, 95.0, snap=self.snap)
        return None if q is None else q * 1000.0

    def perf_drop(self, min_points: int = 20) -> float | None:
        books = self.books
        legacy = books.window_quantile(("legacy",), self.start_s, 95.0, min_points, self.snap)
        new = books.window_quantile(("new", "shadow"), self.start_s, 95.0, min_points,
                                    self.snap)
        if legacy is None or new is None:
            return None
        return max(0.0, (new - legacy) / legacy) if legacy > 0 else None

    def perf_judgement(self) -> str:
        """The model compares p95s without the judge's test: nothing to quote."""
        return ""

    @property
    def stalled_seconds(self) -> float:
        if len(self.ticks) < 2:
            return 0.0
        return self.ticks[-1].stalled_cum - self.ticks[0].stalled_cum

    def inconsistent(self) -> int:
        return self.books.inconsistent_since(self.start_s)


@dataclass
class Monitor:
    """Scrapes ``services`` each ``params.interval`` (see the module's docstring); wakes early
    when ``signals`` is poked, and stays awake while one of ``triggers`` is timing its
    ``for:``."""

    env: simpy.Environment
    params: MonitorParams
    books: Books
    state: RunState
    signals: Signals
    services: Services
    ha: HaServer
    triggers: PendingTriggers
    keep_s: float = 40.0
    sample_every: float = 1.0
    ticks: deque[Tick] = field(default_factory=deque)
    first: Tick | None = None
    samples: list[Sample] = field(default_factory=list)
    on_tick: list[Callable[[Tick], None]] = field(default_factory=list)
    _last: dict[str, tuple[float, float, bool]] = field(default_factory=dict)
    _last_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    _depths: dict[str, int] = field(default_factory=dict)
    _refused: float = 0.0
    _next_sample: float = 0.0
    _produced: int = 0
    _sample_t: float = 0.0
    _anchors: dict[float, tuple[Tick | None, Tick | None]] = field(default_factory=dict)
    _watched: list[Service] = field(default_factory=list)
    _snaps: dict[float, dict[str, dict[int, float]]] = field(default_factory=dict)
    ticks_seen: int = 0
    max_skip: float = 10.0

    def run(self) -> Gen:
        env, p, signals = self.env, self.params, self.signals
        self._watched = [self.services.influx, *(self.services[s] for s in PIPELINE)]
        while True:
            started = env.now
            tick = self.scrape(started)
            for callback in list(self.on_tick):
                callback(tick)
            delay = max(0.05, p.interval - (env.now - started))
            skip = min(self.max_skip, self._next_sample - env.now)
            if skip > delay and self._quiet(tick):
                # Nothing is failing, waiting or in flight for long: no trigger can change its
                # mind until something happens, and whatever happens pokes the monitor.
                signals.poked = env.event()
                yield env.timeout(skip) | signals.poked
                signals.poked = None
                grid = p.interval * math.ceil((env.now - started) / p.interval - 1e-9)
                if started + grid > env.now:
                    yield env.timeout(started + grid - env.now)
            else:
                yield env.timeout(delay)

    def _quiet(self, tick: Tick) -> bool:
        services = self.services
        if not all(tick.healthy.values()) or len(tick.healthy) < 2:
            return False
        for svc in self._watched:
            if svc.paused or (services.wanted.get(svc.name) and not svc.running):
                return False
        oldest = self.ticks[0]
        if tick.errors != oldest.errors or tick.received < oldest.received:
            return False
        for name in ("ingestion", "enrichment"):
            if services[name].running and services[name].breaker_open():
                return False
        for conn in self.ha.conns.values():
            if conn.client.running and not conn.up:
                return False
        if self.triggers.since_s:
            return False  # a trigger's condition holds: its ``for:`` is running
        return self.books.settled_before(tick.t_s - 1.0)

    def now_s(self) -> float:
        return self.env.now

    def scrape(self, t_s: float) -> Tick:
        now = self.env.now
        healthy: dict[str, bool] = {}
        queue_depth = 0
        for svc in self._watched:
            if not svc.running or svc.paused:
                continue  # the runtimes report a frozen service as not running
            name = svc.name
            if not svc.listening():
                healthy[name] = False
                self._depth(name, 0, False)
                continue
            ok = svc.healthy(now)
            healthy[name] = ok
            if name == "influxdb":
                continue
            self._last[name] = (svc.error_total(), svc.received_total(), svc.breaker_open())
            depth = svc.queue_depth()
            queue_depth += depth
            self._depth(name, depth, svc.breaker_open())
        errors = received = new_errors = new_received = 0.0
        for name, (err, rec, _) in self._last.items():
            errors += err
            if name in NEW_PATH:
                new_errors += err
            if name in INGRESS:
                received += rec
                if name == "ingestion":
                    new_received += rec
        errors += self._refused
        new_errors += self._refused
        books = self.books
        prev = self.ticks[-1] if self.ticks else None
        stalled = prev.stalled_cum if prev else 0.0
        if prev is not None and books.live_stored == prev.stored \
                and prev.fired_subscribed > prev.stored:
            stalled += t_s - prev.t_s
        tick = Tick(t_s, books.fired_subscribed, books.live_stored, errors, received,
                    new_errors, new_received, healthy, queue_depth, stalled)
        self.ticks.append(tick)
        self.ticks_seen += 1
        if self.first is None:
            self.first = tick
        for key, (before, after) in list(self._anchors.items()):
            if after is None and t_s >= key:
                self._anchors[key] = (before, tick)
        while self.ticks and self.ticks[0].t_s < t_s - self.keep_s:
            old = self.ticks.popleft()
            for key, (_before, after) in list(self._anchors.items()):
                if after is None and old.t_s < key:
                    self._anchors[key] = (old, None)
        books.prune(t_s)
        # Keep the loss check's queue short (a wider grace than any check marks only what
        # every check would mark due too) and the in-flight list current.
        books.overdue(t_s, self.keep_s)
        books.settled_before(t_s - 1.0)
        self._produced += books.produced_since_tick
        books.produced_since_tick = 0
        if t_s >= self._next_sample:
            self._sample(tick)
        return tick

    def _depth(self, name: str, depth: int, breaker_open: bool) -> None:
        grew = depth - self._depths.get(name, depth)
        self._depths[name] = depth
        if name in NEW_PATH and breaker_open and grew > 0:
            self._refused += grew

    def _sample(self, tick: Tick) -> None:
        dt = tick.t_s - self._sample_t if self.samples else tick.t_s
        window = self.window(10.0)
        st = self.state
        self.samples.append(Sample(
            t_s=round(tick.t_s, 3), phase=st.phase, new_percent=st.new_percent,
            shadow=st.shadow, emitted=self.books.emitted, stored=tick.stored,
            throughput_eps=self._produced / dt if dt > 0 else 0.0,
            p95_ms=window.p95_ms(("legacy", "new")), error_rate=window.error_rate,
            queue_depth=tick.queue_depth, healthy=dict(tick.healthy)))
        self._produced = 0
        self._sample_t = tick.t_s
        self._next_sample = tick.t_s + self.sample_every - 1e-9

    # -- windows -----------------------------------------------------------------------------------

    def anchor(self, since_s: float) -> None:
        """Remember the ticks around ``since_s`` (a traffic step's start) and what had been
        written by then, for its gate: a hold outlasts the ticks and points kept."""
        before = self.ticks[-1] if self.ticks else None
        self._anchors[since_s] = (before, None)
        self._snaps[since_s] = self.books.snapshot()

    def window(self, seconds: float, *, since_s: float | None = None) -> Window:
        ticks_all = self.ticks
        now = ticks_all[-1].t_s if ticks_all else self.now_s()
        start = now - seconds if since_s is None else since_s
        ticks: list[Tick] = []
        first: Tick | None = None
        for t in reversed(ticks_all):
            if t.t_s >= start:
                ticks.append(t)
            else:
                first = t
                break
        ticks.reverse()
        if since_s is not None and since_s in self._anchors:
            anchor_before, anchor_after = self._anchors[since_s]
            if first is None and anchor_before is not None:
                first = anchor_before
            if anchor_after is not None and (not ticks or ticks[0].t_s > anchor_after.t_s):
                ticks.insert(0, anchor_after)
        if first is None:
            first = ticks[0] if ticks else None
        if since_s is None and start <= 0 and self.first is not None:
            first = self.first
            if not ticks or ticks[0] is not self.first:
                ticks.insert(0, self.first)
        snap = self._snaps.get(since_s) if since_s is not None else None
        return Window(start, now, first, ticks[-1] if ticks else None, ticks, self.books, snap)
