"""Each scenario step, carried out against the runtime, the fake Home Assistant and admin-api.

Holds are where time passes, so holds are where the rollback triggers are evaluated (every
monitor tick) and where a traffic step's gate is judged at its end.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from harness.scenario.model import (
    CheckStep,
    FaultStep,
    HoldStep,
    LoadStep,
    RollbackStep,
    ServiceStep,
    ShadowStep,
    Step,
    TrafficStep,
    WaitHealthyStep,
)
from harness.scenario.topology import HA_CLIENTS
from simulators.home_assistant.ledger import Ledger

from .control import ControlPlane
from .faults import FaultInjector
from .home_assistant import HomeAssistantSide
from .monitor import Monitor
from .triggers import (
    Firing,
    TriggerState,
    check_gate,
    evaluate,
    inconsistent_points,
    missing_from_shadow,
    overdue,
)

if TYPE_CHECKING:
    from harness.runtime.base import Runtime

    from .state import RunState


class RollbackTriggered(Exception):
    def __init__(self, firing: Firing) -> None:
        super().__init__(firing.evidence)
        self.firing = firing


class StepRunner:
    def __init__(self, state: RunState, runtime: Runtime, ha: HomeAssistantSide,
                 control: ControlPlane, monitor: Monitor, ledger: Ledger,
                 triggers: TriggerState, faults: FaultInjector) -> None:
        self.state = state
        self.rt = runtime
        self.ha = ha
        self.control = control
        self.monitor = monitor
        self.ledger = ledger
        self.triggers = triggers
        self.faults = faults
        self.check_results: list[tuple[str, bool, str]] = []
        self.load_started = False

    async def run(self, step: Step) -> None:
        s = self.state
        if isinstance(step, ServiceStep):
            for service in step.services:
                if not self.rt.has(service):
                    s.mark("service", f"{step.kind} {service}: skipped, not in pipeline "
                                      f"{self.rt.wiring.pipeline.name!r}")
                    continue
                await getattr(self.rt, step.kind)(service)
                s.mark("service", f"{step.kind} {service}")
        elif isinstance(step, WaitHealthyStep):
            services = [svc for svc in step.services if self.rt.has(svc)]
            await asyncio.gather(*(self.rt.wait_healthy(svc, step.timeout) for svc in services))
            s.mark("service", f"healthy: {', '.join(services)}")
            await self.start_load()
        elif isinstance(step, ShadowStep):
            await self.control.set(shadow=step.enabled,
                                   reason=f"scenario {s.scenario.name}: shadow "
                                          f"{'on' if step.enabled else 'off'}")
            s.shadow = step.enabled
            s.analysing = True
            s.mark("traffic", f"shadow {'on' if step.enabled else 'off'}")
        elif isinstance(step, TrafficStep):
            await self._traffic(step)
        elif isinstance(step, HoldStep):
            await self.hold(s.scenario.scaled(step.duration, s.time_scale))
        elif isinstance(step, CheckStep):
            self._check(step)
        elif isinstance(step, LoadStep):
            self.load_began()
            self.ha.set_profile(step.profile)
            s.mark("note", f"load: {step.profile.kind}")
        elif isinstance(step, FaultStep):
            self.faults.schedule(step.fault)
        elif isinstance(step, RollbackStep):
            await self.control.rollback(step.reason)
            s.new_percent = 0
            s.mark("rollback", f"traffic back to legacy ({step.reason})")
        else:  # pragma: no cover - the schema admits nothing else
            raise AssertionError(step)

    async def start_load(self) -> None:
        """Start the scenario's load once, when every running Home Assistant client has
        subscribed: a production system's monolith is listening long before the migration
        begins, so events fired while it is still connecting would be an artefact of the
        test, not a finding."""
        if self.load_started:
            return
        self.load_started = True
        clients = [svc for svc in HA_CLIENTS if self.rt.running(svc)]
        await self.ha.wait_subscribers([self.rt.url(svc) for svc in clients], timeout=15.0)
        self.ha.set_profile(self.state.scenario.load)
        self._start_clock()
        self.state.mark("note", f"load started: {self.state.scenario.load.kind}")

    def load_began(self) -> None:
        """The migration's clock starts with the load: the scenario's timed faults count
        their ``at`` from here, however long the services took to start."""
        if not self.load_started:
            self.load_started = True
            self._start_clock()

    def _start_clock(self) -> None:
        self.state.load_span[:] = [self.state.now_s()]
        self.faults.arm(list(self.state.scenario.faults))

    async def _traffic(self, step: TrafficStep) -> None:
        s = self.state
        for percent in step.steps:
            await self.control.set(new_percent=percent,
                                   reason=f"scenario {s.scenario.name}: traffic {percent}%")
            s.new_percent = percent
            s.analysing = True
            s.mark("traffic", f"new {percent}%")
            started = self.monitor.now_s()
            self.faults.traffic_started(percent, list(s.scenario.faults))
            try:
                await self.hold(s.scenario.scaled(step.hold, s.time_scale))
            finally:
                await self.faults.traffic_ended(percent)
            firing = check_gate(step.gate, self.monitor.window(0, since_s=started))
            if firing is not None:
                s.mark("trigger", firing.evidence)
                raise RollbackTriggered(firing)

    async def hold(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while (remaining := end - loop.time()) > 0:
            self.faults.raise_if_failed()
            try:
                await asyncio.wait_for(self.monitor.wait_tick(), timeout=min(remaining, 2.0))
            except TimeoutError:
                continue
            if self.state.analysing and self.state.scenario.triggers:
                firing = evaluate(self.state.scenario.triggers, self.monitor, self.ledger,
                                  self.triggers)
                if firing is not None:
                    self.state.mark("trigger", f"{firing.trigger}: {firing.evidence}")
                    raise RollbackTriggered(firing)

    def _check(self, step: CheckStep) -> None:
        """A checkpoint on the live evidence; the final verdict re-checks the whole run."""
        window = self.monitor.window(30.0)
        for check in step.checks:
            if check == "loss":
                late = overdue(self.monitor, self.ledger, self.triggers, grace_s=5.0)
                ok, detail = late == 0, f"{late} event(s) not stored after 5 s"
            elif check == "consistency":
                bad = inconsistent_points(window, self.monitor, self.ledger) + \
                    missing_from_shadow(self.monitor, self.ledger, TriggerState(), grace_s=5.0)
                ok = not bad
                detail = (f"{len(bad)} inconsistent point(s) in the last 30 s"
                          + (f": {'; '.join(bad[:3])}" if bad else ""))
            else:
                firing = check_gate(list(self.state.scenario.slos), window)
                ok, detail = firing is None, firing.evidence if firing else "SLOs hold"
            self.check_results.append((check, ok, detail))
            self.state.mark("check", f"{check}: {'ok' if ok else 'FAILED'} ({detail})")
