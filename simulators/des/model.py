"""The model: one SimPy Environment with the Home Assistant source, the services, the network,
the monitor and the plan runner, built from a scenario and run to an ``Outcome``.

This module wires the parts, the SimPy way: each one is handed the Environment and the objects
it uses (constructor arguments; ``ports.py`` names what a part needs of one it must not
import), so no part reaches another through the ``Model``.

Everything random draws from one ``random.Random(seed)``: the same scenario, options and seed
give the same outcome, event for event. There is no module-level state.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

import simpy

from .books import Books, LatencyFigures
from .enrichment import Enrichment
from .faults import FaultInjector, random_failures
from .influx import Influx
from .ingestion import Ingestion
from .latency import ShiftedLogNormal
from .legacy import Legacy
from .monitor import Monitor
from .network import Network
from .outcome import Outcome
from .params import PIPELINE, ModelParams
from .plan import Plan
from .routing import OwnershipShares, RoutingPlan
from .service import Admin, Weather
from .services import Services
from .source import HaServer, Source
from .storage import Storage
from .timeline import RunState, Signals
from .triggers import TriggerState

__all__ = ["DEFAULT_LATENCY", "Model", "SimOptions", "simulate"]

#: Unloaded latency per path when no calibration is given: fitted to a process-runtime run of
#: phase3_traffic_switch (p50 / p95 / p99, ms).
DEFAULT_LATENCY = {
    "legacy": ShiftedLogNormal.fit(0.0207, 0.0238, 0.0289),
    "new": ShiftedLogNormal.fit(0.0038, 0.0077, 0.0115),
    "shadow": ShiftedLogNormal.fit(0.0047, 0.0091, 0.0135),
}


@dataclass
class SimOptions:
    seed: int = 1
    time_scale: float = 1.0  # plan durations (holds, fault at/for) are multiplied by this
    load_scale: float = 1.0  # the load profiles' rates are multiplied by this
    params: ModelParams = field(default_factory=ModelParams)
    latency: dict[str, ShiftedLogNormal] = field(default_factory=lambda: dict(DEFAULT_LATENCY))
    max_samples: int = 3000  # timeline samples kept (one per second up to this many)
    expected_duration_s: float | None = None  # to space the samples; None: guessed from the plan
    entity_ids: list[str] | None = None  # the fleet's; None: built from scenario.fleet


class Model:
    def __init__(self, scenario: Any, options: SimOptions) -> None:
        self.scenario = scenario
        self.options = options
        self.params = params = options.params
        self.time_scale = options.time_scale
        self.env = env = simpy.Environment()
        self.rng = rng = random.Random(options.seed)
        self.state = RunState()
        self.signals = signals = Signals(env)
        poke = signals.poke
        self.books = books = Books(dict(options.latency), params.monitor.lookback_s)
        self.net = net = Network()
        self.routing = RoutingPlan(params.monitor.lead_s)
        self.ha = ha = HaServer(env, params, net, rng, books, signals)
        self.influx = influx = Influx(env, "influxdb", params, rng, poke, net)
        storage = Storage(env, params, rng, poke, books=books, influx=influx)
        enrichment = Enrichment(env, params, rng, poke, storage=storage, net=net)
        ingestion = Ingestion(env, params, rng, poke, ha=ha, enrichment=enrichment, net=net)
        legacy = Legacy(env, params, rng, poke, ha=ha, books=books, influx=influx)
        self.services = services = Services(env, influx, {
            "legacy": legacy, "ingestion": ingestion, "enrichment": enrichment,
            "storage": storage, "admin": Admin(env, "admin", params, rng, poke),
            "weather": Weather(env, "weather", params, rng, poke)})
        ids = options.entity_ids
        if ids is None:
            from simulators.home_assistant.fleet import Fleet

            ids = Fleet(scenario.fleet).entity_ids()
        self.source = Source(env, ha, books, self.routing, rng, poke, OwnershipShares(ids))
        self.source.scale = options.load_scale
        holds = [s.duration for p in scenario.phases for s in p.steps if s.kind == "hold"] + \
            [s.hold for p in scenario.phases for s in p.steps if s.kind == "traffic"]
        if holds:
            self.source.max_tick = max(0.25, min(10.0, 0.005 * min(holds) * self.time_scale))
        triggers_window = max([t.window for t in scenario.triggers] + [30.0])
        books.ring_seconds = int(triggers_window) + 8
        triggers = TriggerState()
        self.monitor = Monitor(env, params.monitor, books, self.state, signals, services, ha,
                               triggers, keep_s=triggers_window + 5)
        self.monitor.max_skip = 60.0
        self.faults = FaultInjector(env, self.time_scale, services=services, ha=ha, net=net,
                                    books=books, signals=signals)
        self.plan = Plan(env, scenario, self.time_scale, state=self.state, signals=signals,
                         services=services, ha=ha, routing=self.routing, source=self.source,
                         faults=self.faults, monitor=self.monitor, books=books,
                         triggers=triggers, drain_timeout=params.monitor.drain_timeout)
        self._plan_proc: simpy.Process | None = None

    # -- running --------------------------------------------------------------------------------

    def start(self) -> simpy.Process:
        """Spawn the plan, the monitor and the random failures; returns the plan's process
        (``env.run(until=...)`` it, or call ``run``)."""
        if self._plan_proc is None:
            expected = self.options.expected_duration_s or self.plan.expected_duration()
            self.monitor.sample_every = max(self.params.monitor.interval,
                                            expected / max(1, self.options.max_samples))
            for name, rel in self.params.reliability.items():
                self.env.process(random_failures(self.env, self.rng, self.services,
                                                 self.signals.mark, name, rel.mtbf_s,
                                                 rel.mttr_s))
            self._plan_proc = self.env.process(self.plan.run())
            self.env.process(self.monitor.run())
        return self._plan_proc

    def run(self) -> Outcome:
        """Run the scenario to its end and return what it concluded."""
        wall = time.perf_counter()
        done = self.start()
        self.env.run(until=done)
        outcome = self._outcome()
        outcome.wall_s = time.perf_counter() - wall
        return outcome

    def _outcome(self) -> Outcome:
        books, st, mon = self.books, self.state, self.monitor
        duration = self.env.now
        lost = max(0, books.expected - books.stored_production)
        # What is still queued at the end is lost as surely as what was dropped.
        queued = lost - sum(books.lost_by_cause.values())
        causes = dict(books.lost_by_cause)
        if queued > 0:
            causes["still queued in the pipeline when the run ended"] = queued
        counts = {"emitted": books.emitted, "expected": books.expected,
                  "unsubscribed": books.unsubscribed,
                  "stored_production": books.stored_production,
                  "stored_shadow": books.stored_shadow, "lost": lost, "duplicated": 0,
                  "unexpected": 0, "inconsistent": books.inconsistent}
        latency: dict[str, LatencyFigures] = {}
        for key, paths in (("legacy", ("legacy",)), ("new", ("new",)),
                           ("shadow", ("shadow",)), ("production", ("legacy", "new"))):
            fig = books.figures(paths)
            if fig is not None:
                latency[key] = fig
        last = mon.ticks[-1] if mon.ticks else None
        first = mon.first
        error_rate = 0.0
        stalled = 0.0
        if first is not None and last is not None:
            d_err, d_rec = last.errors - first.errors, last.received - first.received
            error_rate = (0.0 if d_err <= 0 else 1.0) if d_rec <= 0 else max(0.0, d_err) / d_rec
            stalled = last.stalled_cum - first.stalled_cum
        span = (st.load_span + [duration, duration])[:2] if st.load_span else [0.0, duration]
        active = max(1e-9, span[1] - span[0])
        legacy_p = books.figures(("legacy",))
        new_p = books.figures(("new", "shadow"))
        perf_drop = None
        if legacy_p and new_p and legacy_p.count >= 20 and new_p.count >= 20 and legacy_p.p95_s:
            perf_drop = max(0.0, (new_p.p95_s - legacy_p.p95_s) / legacy_p.p95_s)
        component = self.services.component
        services = {name: component(name).metrics()
                    for name in ("influxdb", *PIPELINE) if component(name).gen}
        return Outcome(
            scenario=self.scenario.name, seed=self.options.seed, time_scale=self.time_scale,
            load_scale=self.options.load_scale, duration_s=round(duration, 3), counts=counts,
            lost_by_cause=causes, latency=latency, error_rate=error_rate,
            availability=max(0.0, 1.0 - stalled / max(1e-9, duration)),
            throughput_eps=books.stored_production / active, perf_drop=perf_drop,
            phases=self.signals.timeline.phases, markers=self.signals.markers, samples=mon.samples,
            rollback=st.rollback, services=services, checks=self.plan.check_results,
            not_modelled=list(dict.fromkeys(self.faults.noted + self.plan.noted)),
            aborted=self.plan.aborted,
            backpressure_closes={n: c.backpressure_closes for n, c in self.ha.conns.items()},
            jobs=self.source.jobs)


def simulate(scenario: Any, options: SimOptions | None = None) -> Outcome:
    """Run ``scenario`` in simulated time."""
    return Model(scenario, options or SimOptions()).run()
