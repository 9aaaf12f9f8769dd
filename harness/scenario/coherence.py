"""Checks of a scenario's plan as a whole, once every field is valid on its own.

A field can be right while the plan is wrong: a fault tied to a traffic step that never
comes, traffic that steps down to 0% (a rollback the report would not show), a rollback to a
legacy the plan has already stopped, a trigger that fires while all is well. Each finding
carries the path of the key it is about (``("faults", 2, "during")``), so whoever reads the
file can name its line: the model raises the errors (``Scenario._coherent``), ``cutover
validate`` (harness/scenario/validate.py) shows errors and warnings with their lines.

Errors are plans that cannot do what they say (the run would fail for the plan's sake, or
pass while hiding what happened); warnings are plans that run but probably not as meant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from harness.scenario.faults import ServiceFault, during_percent
from harness.scenario.plan import Finding, Loc, Scenario, Severity
from harness.scenario.steps import (
    FaultStep,
    HoldStep,
    LoadStep,
    RollbackStep,
    ServiceStep,
    ShadowStep,
    Step,
    Threshold,
    TrafficStep,
    WaitHealthyStep,
)
from harness.scenario.topology import NEW_PATH
from simulators.home_assistant.limits import DURATION_WHY, MAX_DURATION_S, human_seconds
from simulators.home_assistant.load import (
    ConstantProfile,
    LoadProfile,
    RampProfile,
    SpikeProfile,
    StepProfile,
)

__all__ = ["MONITOR_TICK_S", "UNSCALED", "Finding", "Loc", "Severity", "plan_findings"]

# The runner's monitor samples once a second (harness/runner/monitor.py): a gate judges the
# samples taken during its step's hold.
MONITOR_TICK_S = 1.0
# Which times time_scale leaves alone, in the words of every warning about them.
UNSCALED = ("load profile times, trigger windows and `for`, wait_healthy timeouts, toxic "
            "latencies and delays, clock_skew offsets")

# Metrics where more is worse (a trigger fires above; an SLO or gate holds below) and the
# ones where more is better.
_WORSE_WHEN_HIGH = ("error_rate", "perf_drop", "loss", "duplicated", "inconsistent")
_BETTER_WHEN_HIGH = ("availability", "throughput")
# What check_gate (harness/runner/triggers.py) judges over a traffic step's hold.
_GATE_METRICS = ("error_rate", "perf_drop", "availability")


def _dotted(loc: Loc) -> str:
    return ".".join(str(p) for p in loc)


def plan_findings(scenario: Scenario, place: Callable[[Loc], str] = _dotted) -> list[Finding]:
    """Every problem of the plan, errors and warnings, in file order where it has one.
    ``place`` names another spot of the file in a message (a line, given the file)."""
    out: list[Finding] = []
    _names_and_expectations(scenario, out)
    _during(scenario, out)
    _triggers(scenario, out)
    _thresholds(scenario, out)
    _Walk(scenario, out, place).run()
    return out


# -- fields that must agree ------------------------------------------------------------------


def _names_and_expectations(s: Scenario, out: list[Finding]) -> None:
    seen: set[str] = set()
    for i, phase in enumerate(s.phases):
        if phase.name in seen:
            out.append(Finding(("phases", i, "name"), "error",
                               f"phase names must be unique; {phase.name!r} is used twice "
                               f"(phases: {[p.name for p in s.phases]})"))
        seen.add(phase.name)
    if s.expect.rollback == "triggered" and not s.triggers:
        out.append(Finding(("expect", "rollback"), "error",
                           "expect.rollback is 'triggered' but the scenario has no triggers"))
    names = [t.name for t in s.triggers]
    if s.expect.reason and s.expect.reason != "gate" and s.expect.reason not in names:
        out.append(Finding(("expect", "reason"), "error",
                           f"expect.reason {s.expect.reason!r} is not one of the scenario's "
                           f"triggers {names}"))
    if s.expect.reason == "gate" and not _gates(s):
        out.append(Finding(("expect", "reason"), "error",
                           "expect.reason is 'gate' but no traffic step has a gate: a run can "
                           "never meet it"))
    if s.expect.reason and s.expect.rollback == "not_triggered":
        out.append(Finding(("expect", "reason"), "warning",
                           f"expect.reason {s.expect.reason!r} is ignored while expect.rollback "
                           "is 'not_triggered'"))


def _gates(s: Scenario) -> list[tuple[Loc, Threshold]]:
    return [(("phases", i, "steps", j, "traffic", "gate", k), threshold)
            for i, phase in enumerate(s.phases) for j, step in enumerate(phase.steps)
            if isinstance(step, TrafficStep) for k, threshold in enumerate(step.gate)]


def _during(s: Scenario, out: list[Finding]) -> None:
    percents = {p for phase in s.phases for step in phase.steps
                if isinstance(step, TrafficStep) for p in step.steps}
    for k, fault in enumerate(s.faults):
        pct = during_percent(fault)
        if pct is not None and pct not in percents:
            out.append(Finding(("faults", k, "during"), "error",
                               f"fault {fault.kind!r} is tied to 'during: {fault.during}' but "
                               f"no traffic step goes to {pct}% (steps: {sorted(percents)})"))
    for i, phase in enumerate(s.phases):
        for j, step in enumerate(phase.steps):
            if isinstance(step, FaultStep) and step.fault.during is not None:
                out.append(Finding(("phases", i, "steps", j, "fault", "during"), "error",
                                   f"phase {phase.name!r}: 'during' belongs to the scenario's "
                                   "faults: list; a fault step starts where it stands "
                                   "(use 'at' to delay it)"))


def _triggers(s: Scenario, out: list[Finding]) -> None:
    for k, trigger in enumerate(s.triggers):
        where: Loc = ("triggers", k)
        threshold = trigger.threshold
        if trigger.name == "service_unavailable":
            if threshold is not None:
                out.append(Finding(where, "warning",
                                   f"service_unavailable ignores its threshold "
                                   f"{threshold.text!r}: it fires when a watched service is "
                                   "down"))
            continue
        if trigger.services:
            out.append(Finding(where, "warning",
                               f"{trigger.name} ignores services {trigger.services}: only "
                               "service_unavailable watches services"))
        if threshold is None:
            continue
        if threshold.metric != trigger.name:
            out.append(Finding(where, "error",
                               f"trigger {trigger.name} measures {trigger.name}, but its "
                               f"threshold {threshold.text!r} is about {threshold.metric}: "
                               f"write e.g. '{trigger.name} > ...'"))
        elif threshold.op in ("<", "<=") or (threshold.op == "==" and threshold.value == 0):
            out.append(Finding(where, "warning",
                               f"trigger {threshold.text!r} fires while {trigger.name} is low, "
                               f"i.e. on a healthy run: a trigger fires on bad news, e.g. "
                               f"'{trigger.name} > {_example(trigger.name)}'"))


def _example(metric: str) -> str:
    return {"error_rate": "1%", "perf_drop": "20%"}.get(metric, "0")


def _thresholds(s: Scenario, out: list[Finding]) -> None:
    checked: list[tuple[Loc, Threshold, str]] = [(("slos", k), t, "SLO")
                                                 for k, t in enumerate(s.slos)]
    checked += [(loc, t, "gate") for loc, t in _gates(s)]
    for loc, t, what in checked:
        metric = t.metric
        worse_high = metric in _WORSE_WHEN_HIGH or (metric.startswith("p")
                                                     and metric != "perf_drop")
        if worse_high and t.op in (">", ">="):
            out.append(Finding(loc, "warning",
                               f"{what} {t.text!r} holds only while {metric} is high: {what}s "
                               f"say what must stay true, e.g. '{metric} < ...'"))
        elif metric in _BETTER_WHEN_HIGH and t.op in ("<", "<="):
            out.append(Finding(loc, "warning",
                               f"{what} {t.text!r} holds only while {metric} is low: {what}s "
                               f"say what must stay true, e.g. '{metric} >= ...'"))
        percentile = metric.startswith("p") and metric != "perf_drop"
        if what == "gate" and not (metric in _GATE_METRICS or percentile):
            out.append(Finding(loc, "warning",
                               f"gate {t.text!r} is never judged: a gate judges error_rate, "
                               "p(N), perf_drop and availability over its step's hold; "
                               f"{metric} is judged by the triggers and the final verdict"))


# -- the plan, step by step --------------------------------------------------------------------


@dataclass
class _Walk:
    """Goes through the phases as the runner would, keeping what is running, the traffic
    share and the plan time, and notes what cannot be meant."""

    s: Scenario
    out: list[Finding]
    place: Callable[[Loc], str]
    state: dict[str, str] = field(default_factory=dict)  # service -> running/paused/stopped
    changed: dict[str, Loc] = field(default_factory=dict)  # service -> where it last changed
    percent: int = 0
    percent_at: Loc | None = None
    analysing: bool = False
    t: float = 0.0  # plan seconds so far (holds and traffic holds)
    profiles: list[tuple[Loc, LoadProfile, float]] = field(default_factory=list)
    armed_at: float | None = None  # plan time from which triggers are evaluated
    hazard_told: bool = False

    def run(self) -> None:
        self.profiles.append((("load",), self.s.load, 0.0))
        for i, phase in enumerate(self.s.phases):
            if phase.load is not None:
                self.profiles.append((("phases", i, "load"), phase.load, self.t))
            for j, step in enumerate(phase.steps):
                self.step(("phases", i, "steps", j), step)
        self._rollback_steps_run()
        self._length()
        self._unscaled()
        self._timed_faults()

    # -- steps

    def step(self, loc: Loc, step: Step) -> None:
        if isinstance(step, ServiceStep):
            for service in step.services:
                self.service(loc, step.kind, service)
        elif isinstance(step, WaitHealthyStep):
            for service in step.services:
                if self.state.get(service) != "running":
                    self.warn(loc, f"wait_healthy {service}: {service} is "
                                   f"{self.why_down(service)}, so the wait fails after its "
                                   f"{step.timeout:g} s timeout (start it first)")
        elif isinstance(step, ShadowStep):
            self.analysing = True
            self.armed_at = self.t if self.armed_at is None else self.armed_at
            self.need(loc, "shadow", ("admin", *NEW_PATH) if step.enabled else ("admin",))
        elif isinstance(step, TrafficStep):
            self.traffic(loc, step)
        elif isinstance(step, HoldStep):
            self.hold(step.duration, gated=False)
        elif isinstance(step, LoadStep):
            self.profiles.append(((*loc, "load"), step.profile, self.t))
        elif isinstance(step, RollbackStep):
            self.rollback(loc, self.state)
            self.percent, self.percent_at = 0, loc
        elif isinstance(step, FaultStep) and isinstance(step.fault, ServiceFault):
            fault = step.fault
            for service in fault.service:
                if self.state.get(service) != "running":
                    self.warn((*loc, "fault"), f"fault {fault.kind} {service}: {service} is "
                                               f"{self.why_down(service)}")
                elif fault.for_ is None and fault.kind in ("kill", "stop", "pause"):
                    self.set(service, {"pause": "paused", "kill": "killed"}.get(fault.kind,
                                                                                "stopped"), loc)

    def service(self, loc: Loc, kind: str, service: str) -> None:
        now = self.state.get(service, "stopped")
        if kind == "start":
            if now not in ("stopped", "killed"):
                self.warn(loc, f"start {service}: {service} is already "
                               f"{self.why_down(service)}")
            self.set(service, "running", loc)
        elif kind == "resume":
            if now != "paused":
                self.warn(loc, f"resume {service}: {service} is not paused: it is "
                               f"{self.why_down(service)}")
            else:
                self.set(service, "running", loc)
        else:  # stop, kill, pause, restart
            if now in ("stopped", "killed"):
                self.warn(loc, f"{kind} {service}: {service} is not running "
                               f"({self.why_down(service)})")
                return
            self.set(service, {"pause": "paused", "restart": "running", "kill": "killed"}.get(
                kind, "stopped"), loc)

    def traffic(self, loc: Loc, step: TrafficStep) -> None:
        self.analysing = True
        self.armed_at = self.t if self.armed_at is None else self.armed_at
        for m, p in enumerate(step.steps):
            at: Loc = (*loc, "traffic", "steps", m)
            before = f" ({self.place(self.percent_at)})" if self.percent_at and \
                self.place(self.percent_at) != self.place(at) else ""
            if p == 0 and self.percent > 0:
                self.out.append(Finding(at, "error",
                    f"traffic steps down from {self.percent}% to 0%: a rollback the run would "
                    "not record (it would pass with legacy owning every event and no rollback "
                    "in the report); to roll back, write '- rollback: REASON'"))
            elif p < self.percent:
                self.warn(at, f"traffic steps down from {self.percent}%{before} to {p}%: "
                              "events move back to legacy in the middle of the switch; if a "
                              "rollback is meant, write '- rollback: REASON'")
            elif p == self.percent:
                self.warn(at, f"traffic {p}% again: the new pipeline already owns {p}%"
                              f"{before}, so this step only holds longer; write a longer "
                              "hold instead")
            if p > 0:
                self.need(at, f"traffic {p}%", ("admin", *NEW_PATH))
            self.percent, self.percent_at = p, at
            self.hold(step.hold, gated=bool(step.gate))
            if step.gate and step.hold * self.s.time_scale < MONITOR_TICK_S:
                self.warn((*loc, "traffic"),
                          f"a gated step holds {step.hold:g} s x time_scale "
                          f"{self.s.time_scale:g} = {step.hold * self.s.time_scale:.2g} s, "
                          f"shorter than the monitor's {MONITOR_TICK_S:g} s tick: the gate "
                          "judges no evidence")
                break  # said once per traffic step

    def hold(self, seconds: float, *, gated: bool) -> None:
        self.t += seconds
        if (self.analysing and self.s.triggers) or gated:
            self.rollback_hazard()

    def rollback(self, loc: Loc, state: dict[str, str]) -> None:
        if state.get("legacy") != "running":
            self.warn(loc, f"rollback: legacy is {self.why_down('legacy', state)}, so every "
                           "event rolled back to it is lost; start legacy first "
                           "('- start: legacy', '- wait_healthy: legacy')")

    def rollback_hazard(self) -> None:
        """A trigger may fire here: would the rollback steps route events to a stopped
        legacy? (Told once: the first place it could happen.)"""
        if self.hazard_told or self.state.get("legacy") == "running":
            return
        self.hazard_told = True
        state = dict(self.state)
        for step in self.s.rollback:
            if isinstance(step, ServiceStep):
                for service in step.services:
                    state[service] = {"start": "running", "restart": "running",
                                      "resume": "running", "pause": "paused"}.get(step.kind,
                                                                                   "stopped")
            elif isinstance(step, RollbackStep) and state.get("legacy") != "running":
                break
        else:
            if self.s.rollback:
                return  # the rollback steps start legacy before they roll back
        where = self.changed.get("legacy", ("phases",))
        now = self.state.get("legacy")
        self.warn(where, ("legacy is never started, yet" if now is None else f"legacy is {now} "
                          "here while") + " the rollback triggers are still armed: a trigger "
                         "or gate that fires after this rolls every event back to a legacy "
                         "that is not running, and nothing stores them; start legacy in the "
                         "rollback steps ('- start: legacy', '- wait_healthy: legacy') before "
                         "'- rollback:'")

    def _rollback_steps_run(self) -> None:
        if self.s.rollback and not self.s.triggers and not _gates(self.s):
            self.warn(("rollback",), "the rollback steps never run: no trigger and no traffic "
                                     "gate can start a rollback")

    # -- times

    def _length(self) -> None:
        if self.t > MAX_DURATION_S:
            self.out.append(Finding(("phases",), "error",
                f"the plan's holds add up to {human_seconds(self.t)}: at most "
                f"{human_seconds(MAX_DURATION_S)}, {DURATION_WHY}"))
        elif self.t * self.s.time_scale > MAX_DURATION_S:
            self.out.append(Finding(("time_scale",), "error",
                f"the plan's holds ({human_seconds(self.t)}) x time_scale "
                f"{self.s.time_scale:g} take {human_seconds(self.t * self.s.time_scale)}: at "
                f"most {human_seconds(MAX_DURATION_S)} of real time, {DURATION_WHY}"))

    def _unscaled(self) -> None:
        """Times the time scale leaves alone, that cannot take effect within the run."""
        scale = self.s.time_scale
        note = (f" (real seconds: time_scale {scale:g} scales holds and fault times, not "
                "load profile times or trigger windows)" if scale != 1 else "")
        for loc, profile, start in self.profiles:
            left = (self.t - start) * scale  # real seconds of plan left when it is set
            late: list[tuple[Loc, str, float]] = []
            if isinstance(profile, RampProfile):
                late.append(((*loc, "duration"), "the ramp reaches its end rate", profile.duration))
            elif isinstance(profile, SpikeProfile):
                late.append(((*loc, "at"), "the spike starts", profile.at))
            elif isinstance(profile, StepProfile):
                begins = 0.0
                for n, load_step in enumerate(profile.steps[:-1]):
                    begins += load_step.duration
                    late.append(((*loc, "steps", n + 1), f"load step {n + 2} starts", begins))
            elif isinstance(profile, ConstantProfile) and profile.duration is not None:
                late.append(((*loc, "duration"), "the load stops", profile.duration))
            for where, what, at in late:
                if at >= left:
                    self.warn(where, f"{what} {at:g} s after it is set, but the plan has only "
                                     f"{left:.3g} s of holds left then{note}: it never happens")
                    break
        if self.armed_at is None:
            return
        left = (self.t - self.armed_at) * scale
        for k, trigger in enumerate(self.s.triggers):
            # Only times the file gives (a default window covering the whole run is harmless)
            # that stop the trigger from ever firing: a `for` longer than the holds, or a loss
            # trigger's window, which is how late an event must be to count as lost.
            given = trigger.model_fields_set
            for name, value in (("window", trigger.window), ("for", trigger.for_)):
                key = "for_" if name == "for" else name
                never = name == "for" or trigger.name == "loss"
                if key in given and never and value >= left:
                    self.warn(("triggers", k, name), f"{trigger.name} {name} {value:g} s: "
                                                     f"triggers are evaluated during only "
                                                     f"{left:.3g} s of holds{note}; the trigger "
                                                     "never fires")

    def _timed_faults(self) -> None:
        for k, fault in enumerate(self.s.faults):
            if fault.during is None and fault.at >= self.t:
                self.warn(("faults", k, "at"),
                          f"fault {fault.kind} at {human_seconds(fault.at)} (from the start of "
                          f"the load): the plan's holds end at {human_seconds(self.t)}, so it "
                          "never happens")

    # -- helpers

    def need(self, loc: Loc, what: str, services: tuple[str, ...]) -> None:
        # Only what the plan never started or shut down on purpose: a killed or paused
        # service is the fault a scenario is about, not a mistake.
        down = [s for s in services if self.state.get(s) in (None, "stopped")]
        if down:
            self.warn(loc, f"{what}: " + "; ".join(f"{s} is {self.why_down(s)}" for s in down)
                           + ", so the new pipeline cannot do its part")

    def why_down(self, service: str, state: dict[str, str] | None = None) -> str:
        """``stopped at line 12``, ``running since line 3``, ``not started yet``."""
        now = (self.state if state is None else state).get(service)
        if now is None:
            return "not started yet"
        where = self.changed.get(service)
        link = "since" if now == "running" else "at"
        return now + (f" {link} {self.place(where)}" if where else "")

    def set(self, service: str, state: str, loc: Loc) -> None:
        self.state[service] = state
        self.changed[service] = loc

    def warn(self, loc: Loc, message: str) -> None:
        self.out.append(Finding(loc, "warning", message))
