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

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from .outcome import PhaseSpan, RollbackInfo
from .triggers import Firing, TriggerState, check_gate, evaluate

if TYPE_CHECKING:
    from .model import Model

__all__ = ["Plan", "RollbackTriggered"]

Gen = Generator[Any, Any, Any]
_SERVICE_KINDS = ("start", "stop", "kill", "pause", "resume", "restart")


class RollbackTriggered(Exception):
    def __init__(self, firing: Firing) -> None:
        super().__init__(firing.evidence)
        self.firing = firing


class Abort(Exception):
    """The run cannot go on (a service never became healthy)."""


class Plan:
    def __init__(self, model: Model) -> None:
        self.m = model
        self.env = model.env
        self.sc = model.scenario
        self.triggers = TriggerState()
        self.load_started = False
        self.check_results: list[tuple[str, bool, str]] = []
        self.noted: list[str] = []
        self.aborted: str | None = None
        self._holding: simpy.Event | None = None
        model.monitor.on_tick.append(self._on_tick)

    # -- bookkeeping like RunState ---------------------------------------------------------------

    def begin_phase(self, name: str) -> None:
        st, now = self.m.state, self.env.now
        if st.phases:
            st.phases[-1].end_s = now
        st.phases.append(PhaseSpan(name, now, now))
        st.phase = name
        self.m.mark("phase", name)

    def expected_duration(self) -> float:
        """Roughly how long the plan takes (for spacing the timeline's samples)."""
        total = 0.0
        steps = [s for p in self.sc.phases for s in p.steps]
        for step in steps:
            kind = step.kind
            if kind == "hold":
                total += step.duration * self.m.time_scale
            elif kind == "traffic":
                total += step.hold * self.m.time_scale * len(step.steps)
            elif kind == "wait_healthy":
                total += 3.0
        return total + 10.0

    # -- the run ---------------------------------------------------------------------------------

    def run(self) -> Gen:
        m, st = self.m, self.m.state
        try:
            try:
                for i, phase in enumerate(self.sc.phases):
                    if i:
                        yield from self.start_load()
                    else:
                        m.faults.arm(list(getattr(self.sc, "faults", []) or []))
                    self.begin_phase(phase.name)
                    if phase.load is not None:
                        if not self.load_started:
                            st.load_span[:] = [self.env.now]
                        self.load_started = True
                        m.source.set_profile(phase.load, self.env.now)
                    for step in phase.steps:
                        yield from self.step(step)
            except RollbackTriggered as fired:
                st.rollback = RollbackInfo(True, fired.firing.trigger, round(self.env.now, 3),
                                           fired.firing.evidence)
                m.mark("rollback", f"rollback: {fired.firing.trigger}")
                st.analysing = False
                self.begin_phase("rollback")
                for step in self.sc.rollback or self._default_rollback():
                    yield from self.step(step)
            m.source.set_profile(None, self.env.now)
            yield from m.faults.heal_all()
            st.load_span[1:] = [self.env.now]
            m.mark("note", "load stopped; draining")
            yield from self.drain()
        except Abort as exc:
            self.aborted = str(exc)
            m.source.set_profile(None, self.env.now)
            m.mark("note", f"run aborted: {exc}")
        if st.phases:
            st.phases[-1].end_s = self.env.now

    def _default_rollback(self) -> list[Any]:
        from types import SimpleNamespace

        return [SimpleNamespace(kind="rollback", reason="rollback trigger"),
                SimpleNamespace(kind="hold", duration=60.0)]

    def step(self, step: Any) -> Gen:
        m, st = self.m, self.m.state
        kind = step.kind
        now = self.env.now
        if kind in _SERVICE_KINDS:
            for service in step.services:
                yield from m.service_action(kind, service)
                m.mark("service", f"{kind} {service}")
        elif kind == "wait_healthy":
            deadline = now + step.timeout
            names = list(step.services)
            while not all(m.component(s).healthy(self.env.now) for s in names):
                if self.env.now >= deadline:
                    sick = [s for s in names if not m.component(s).healthy(self.env.now)]
                    raise Abort(f"{', '.join(sick)} not healthy after {step.timeout:g} s")
                yield self.env.timeout(0.05)
            m.mark("service", f"healthy: {', '.join(names)}")
            yield from self.start_load()
        elif kind == "shadow":
            m.routing.change(now, shadow=step.enabled)
            st.shadow = step.enabled
            st.analysing = True
            m.mark("traffic", f"shadow {'on' if step.enabled else 'off'}")
        elif kind == "traffic":
            yield from self._traffic(step)
        elif kind == "hold":
            yield from self.hold(step.duration * m.time_scale)
        elif kind == "check":
            self._check(step)
        elif kind == "load":
            if not self.load_started:
                st.load_span[:] = [now]
            self.load_started = True
            m.source.set_profile(step.profile, now)
            m.mark("note", f"load: {step.profile.kind}")
        elif kind == "rollback":
            m.routing.change(now, new_percent=0)
            st.new_percent = 0
            m.mark("rollback", f"traffic back to legacy ({step.reason})")
        elif kind == "fault":
            m.faults.schedule(step.fault)
        else:
            note = f"step {kind!r} is not modelled; skipped"
            self.noted.append(note)
            m.mark("note", note)

    def start_load(self) -> Gen:
        if self.load_started:
            return
        self.load_started = True
        m = self.m
        clients = [c for c in ("legacy", "ingestion") if m.services[c].running]
        deadline = self.env.now + 15.0
        while self.env.now < deadline and sum(1 for c in clients if m.ha.subscribed(c)) \
                < len(clients):
            yield self.env.timeout(0.05)
        m.source.set_profile(self.sc.load, self.env.now)
        m.state.load_span[:] = [self.env.now]
        m.mark("note", f"load started: {self.sc.load.kind}")

    def _traffic(self, step: Any) -> Gen:
        m, st = self.m, self.m.state
        for percent in step.steps:
            now = self.env.now
            m.routing.change(now, new_percent=percent)
            st.new_percent = percent
            st.analysing = True
            m.mark("traffic", f"new {percent}%")
            m.monitor.anchor(now)
            m.faults.traffic_started(percent, list(getattr(self.sc, "faults", []) or []))
            try:
                yield from self.hold(step.hold * m.time_scale)
            finally:
                yield from m.faults.traffic_ended(percent)
            firing = check_gate(list(step.gate), m.monitor.window(0, since_s=now))
            if firing is not None:
                m.mark("trigger", firing.evidence)
                raise RollbackTriggered(firing)

    def hold(self, seconds: float) -> Gen:
        if not (self.m.state.analysing and self.sc.triggers):
            yield self.env.timeout(seconds)
            return
        self._holding = self.env.event()
        try:
            result = yield self.env.timeout(seconds) | self._holding
        finally:
            holding, self._holding = self._holding, None
        if holding in result:
            firing: Firing = holding.value
            self.m.mark("trigger", f"{firing.trigger}: {firing.evidence}")
            raise RollbackTriggered(firing)

    def _on_tick(self, tick: Any) -> None:
        holding = self._holding
        if holding is None or holding.triggered:
            return
        firing = evaluate(list(self.sc.triggers), self.m.monitor, self.triggers)
        if firing is not None:
            holding.succeed(firing)

    def _check(self, step: Any) -> None:
        m = self.m
        window = m.monitor.window(30.0)
        for check in step.checks:
            if check == "loss":
                late = m.books.overdue(self.env.now, 5.0)
                ok, detail = late == 0, f"{late} event(s) not stored after 5 s"
            elif check == "consistency":
                bad = window.inconsistent()
                ok = not bad
                detail = f"{bad} inconsistent point(s) in the last 30 s"
            else:
                firing = check_gate(list(self.sc.slos), window)
                ok, detail = firing is None, firing.evidence if firing else "SLOs hold"
            self.check_results.append((check, ok, detail))
            m.mark("check", f"{check}: {'ok' if ok else 'FAILED'} ({detail})")

    def drain(self) -> Gen:
        """Until the pipeline holds nothing and the stored count settles (as run.py's _drain)."""
        m = self.m
        deadline = self.env.now + m.params.monitor.drain_timeout
        quiet = 0
        seen = m.monitor.ticks_seen
        while self.env.now < deadline:
            while m.monitor.ticks_seen == seen and self.env.now < deadline:
                yield self.env.timeout(0.05)
            seen = m.monitor.ticks_seen
            ticks = m.monitor.ticks
            if not ticks:
                continue
            last = ticks[-1]
            prev = ticks[-2] if len(ticks) > 1 else None
            settled = last.queue_depth == 0 and prev is not None and last.stored == prev.stored
            quiet = quiet + 1 if settled else 0
            if quiet >= 3 or (last.stored >= last.fired_subscribed and last.queue_depth == 0):
                return
