"""The scenario's phases and steps on simulated time, as ``harness/runner/run.py`` and
``steps.py`` carry them out: the load starts once the clients are subscribed (or when the
second phase begins), holds are where triggers are evaluated (every monitor tick, once the
migration has begun), a traffic step's gate is judged at the end of its hold, a firing trigger
ends the phases and runs the scenario's rollback steps, and at the end the load stops, faults
heal and the pipeline drains before the books are closed.

Step kinds are read by name (``step.kind``), so a kind this module does not know is noted on
the timeline and skipped rather than failing the simulation.
"""

from __future__ import annotations

from typing import Any

import simpy

from .books import Books
from .faults import FaultInjector
from .monitor import Monitor, Tick
from .outcome import RollbackInfo
from .ports import Gen
from .routing import RoutingPlan
from .services import Services
from .source import HaServer, Source
from .timeline import RunState, Signals
from .triggers import Firing, TriggerState, check_gate, evaluate

__all__ = ["Plan", "RollbackTriggered"]

_SERVICE_KINDS = ("start", "stop", "kill", "pause", "resume", "restart")


class RollbackTriggered(Exception):
    def __init__(self, firing: Firing) -> None:
        super().__init__(firing.evidence)
        self.firing = firing


class Abort(Exception):
    """The run cannot go on (a service never became healthy)."""


class Plan:
    """Carries out ``scenario``'s phases and steps on the parts it is handed."""

    def __init__(self, env: simpy.Environment, scenario: Any, time_scale: float, *,
                 state: RunState, signals: Signals, services: Services, ha: HaServer,
                 routing: RoutingPlan, source: Source, faults: FaultInjector,
                 monitor: Monitor, books: Books, triggers: TriggerState,
                 drain_timeout: float) -> None:
        self.env = env
        self.sc = scenario
        self.time_scale = time_scale
        self.state = state
        self.signals = signals
        self.services = services
        self.ha = ha
        self.routing = routing
        self.source = source
        self.faults = faults
        self.monitor = monitor
        self.books = books
        self.drain_timeout = drain_timeout
        self.triggers = triggers
        self.load_started = False
        self.check_results: list[tuple[str, bool, str]] = []
        self.noted: list[str] = []
        self.aborted: str | None = None
        self._holding: simpy.Event | None = None
        monitor.on_tick.append(self._on_tick)

    # -- bookkeeping like RunState ---------------------------------------------------------------

    def begin_phase(self, name: str) -> None:
        self.signals.timeline.begin_phase(name)
        self.state.phase = name

    def expected_duration(self) -> float:
        """Roughly how long the plan takes (for spacing the timeline's samples)."""
        total = 0.0
        steps = [s for p in self.sc.phases for s in p.steps]
        for step in steps:
            kind = step.kind
            if kind == "hold":
                total += step.duration * self.time_scale
            elif kind == "traffic":
                total += step.hold * self.time_scale * len(step.steps)
            elif kind == "wait_healthy":
                total += 3.0
        return total + 10.0

    # -- the run ---------------------------------------------------------------------------------

    def run(self) -> Gen:
        st = self.state
        try:
            try:
                for i, phase in enumerate(self.sc.phases):
                    if i:
                        yield from self.start_load()
                    else:
                        self.faults.arm(list(getattr(self.sc, "faults", []) or []))
                    self.begin_phase(phase.name)
                    if phase.load is not None:
                        if not self.load_started:
                            st.load_span[:] = [self.env.now]
                        self.load_started = True
                        self.source.set_profile(phase.load, self.env.now)
                    for step in phase.steps:
                        yield from self.step(step)
            except RollbackTriggered as fired:
                st.rollback = RollbackInfo(True, fired.firing.trigger, round(self.env.now, 3),
                                           fired.firing.evidence)
                self.signals.mark("rollback", f"rollback: {fired.firing.trigger}")
                st.analysing = False
                self.begin_phase("rollback")
                for step in self.sc.rollback or self._default_rollback():
                    yield from self.step(step)
            self.source.set_profile(None, self.env.now)
            yield from self.faults.heal_all()
            st.load_span[1:] = [self.env.now]
            self.signals.mark("note", "load stopped; draining")
            yield from self.drain()
        except Abort as exc:
            self.aborted = str(exc)
            self.source.set_profile(None, self.env.now)
            self.signals.mark("note", f"run aborted: {exc}")
        self.signals.timeline.end()

    def _default_rollback(self) -> list[Any]:
        from types import SimpleNamespace

        return [SimpleNamespace(kind="rollback", reason="rollback trigger"),
                SimpleNamespace(kind="hold", duration=60.0)]

    def step(self, step: Any) -> Gen:
        st = self.state
        kind = step.kind
        now = self.env.now
        if kind in _SERVICE_KINDS:
            for service in step.services:
                yield from self.services.action(kind, service)
                self.signals.mark("service", f"{kind} {service}")
        elif kind == "wait_healthy":
            deadline = now + step.timeout
            names = list(step.services)
            while not all(self.services.component(s).healthy(self.env.now) for s in names):
                if self.env.now >= deadline:
                    sick = [s for s in names
                            if not self.services.component(s).healthy(self.env.now)]
                    raise Abort(f"{', '.join(sick)} not healthy after {step.timeout:g} s")
                yield self.env.timeout(0.05)
            self.signals.mark("service", f"healthy: {', '.join(names)}")
            yield from self.start_load()
        elif kind == "shadow":
            self.routing.change(now, shadow=step.enabled)
            st.shadow = step.enabled
            st.analysing = True
            self.signals.mark("traffic", f"shadow {'on' if step.enabled else 'off'}")
        elif kind == "traffic":
            yield from self._traffic(step)
        elif kind == "hold":
            yield from self.hold(step.duration * self.time_scale)
        elif kind == "check":
            self._check(step)
        elif kind == "load":
            if not self.load_started:
                st.load_span[:] = [now]
            self.load_started = True
            self.source.set_profile(step.profile, now)
            self.signals.mark("note", f"load: {step.profile.kind}")
        elif kind == "rollback":
            self.routing.change(now, new_percent=0)
            st.new_percent = 0
            self.signals.mark("rollback", f"traffic back to legacy ({step.reason})")
        elif kind == "fault":
            self.faults.schedule(step.fault)
        else:
            note = f"step {kind!r} is not modelled; skipped"
            self.noted.append(note)
            self.signals.mark("note", note)

    def start_load(self) -> Gen:
        if self.load_started:
            return
        self.load_started = True
        clients = [c for c in ("legacy", "ingestion") if self.services[c].running]
        deadline = self.env.now + 15.0
        while self.env.now < deadline and sum(1 for c in clients if self.ha.subscribed(c)) \
                < len(clients):
            yield self.env.timeout(0.05)
        self.source.set_profile(self.sc.load, self.env.now)
        self.state.load_span[:] = [self.env.now]
        self.signals.mark("note", f"load started: {self.sc.load.kind}")

    def _traffic(self, step: Any) -> Gen:
        st = self.state
        for percent in step.steps:
            now = self.env.now
            self.routing.change(now, new_percent=percent)
            st.new_percent = percent
            st.analysing = True
            self.signals.mark("traffic", f"new {percent}%")
            self.monitor.anchor(now)
            self.faults.traffic_started(percent, list(getattr(self.sc, "faults", []) or []))
            try:
                yield from self.hold(step.hold * self.time_scale)
            finally:
                yield from self.faults.traffic_ended(percent)
            firing = check_gate(list(step.gate), self.monitor.window(0, since_s=now))
            if firing is not None:
                self.signals.mark("trigger", firing.evidence)
                raise RollbackTriggered(firing)

    def hold(self, seconds: float) -> Gen:
        if not (self.state.analysing and self.sc.triggers):
            yield self.env.timeout(seconds)
            return
        self._holding = self.env.event()
        try:
            result = yield self.env.timeout(seconds) | self._holding
        finally:
            holding, self._holding = self._holding, None
        if holding in result:
            firing = holding.value
            assert isinstance(firing, Firing)  # what _on_tick succeeds it with
            self.signals.mark("trigger", f"{firing.trigger}: {firing.evidence}")
            raise RollbackTriggered(firing)

    def _on_tick(self, _tick: Tick) -> None:
        holding = self._holding
        if holding is None or holding.triggered:
            return
        firing = evaluate(list(self.sc.triggers), self.monitor, self.triggers)
        if firing is not None:
            holding.succeed(firing)

    def _check(self, step: Any) -> None:
        window = self.monitor.window(30.0)
        for check in step.checks:
            if check == "loss":
                late = self.books.overdue(self.env.now, 5.0)
                ok, detail = late == 0, f"{late} event(s) not stored after 5 s"
            elif check == "consistency":
                bad = window.inconsistent()
                ok = not bad
                detail = f"{bad} inconsistent point(s) in the last 30 s"
            else:
                firing = check_gate(list(self.sc.slos), window)
                ok, detail = firing is None, firing.evidence if firing else "SLOs hold"
            self.check_results.append((check, ok, detail))
            self.signals.mark("check", f"{check}: {'ok' if ok else 'FAILED'} ({detail})")

    def drain(self) -> Gen:
        """Until the pipeline holds nothing and the stored count settles (as run.py's _drain)."""
        deadline = self.env.now + self.drain_timeout
        quiet = 0
        seen = self.monitor.ticks_seen
        while self.env.now < deadline:
            while self.monitor.ticks_seen == seen and self.env.now < deadline:
                yield self.env.timeout(0.05)
            seen = self.monitor.ticks_seen
            ticks = self.monitor.ticks
            if not ticks:
                continue
            last = ticks[-1]
            prev = ticks[-2] if len(ticks) > 1 else None
            settled = last.queue_depth == 0 and prev is not None and last.stored == prev.stored
            quiet = quiet + 1 if settled else 0
            if quiet >= 3 or (last.stored >= last.fired_subscribed and last.queue_depth == 0):
                return
