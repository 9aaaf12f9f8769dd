"""What a scenario file says, as pydantic models.

A scenario is the migration plan written down: phases of steps (start services, turn the
shadow on, step the traffic, hold, check), the SLOs in k6's spirit, the rollback triggers and
steps, and what the run is expected to conclude. Durations are written in the plan's own time
("5m") and multiplied by the time scale, so the seed's 5-minute holds take seconds in CI and
``--time-scale 1`` rehearses them for real.

The parts are models of their own: the steps and phases (``steps``), the triggers and the
expectation (``triggers``); the plan's checks as a whole (``coherence``) run when a scenario
is validated.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from harness.scenario.coherence import plan_findings
from harness.scenario.durations import Duration, parse_duration
from harness.scenario.faults import YamlFault
from harness.scenario.steps import (
    STEP_KEYS,
    CheckStep,
    FaultStep,
    HoldStep,
    LoadStep,
    Phase,
    RollbackStep,
    ServiceStep,
    ShadowStep,
    Step,
    Threshold,
    ThresholdSpec,
    TrafficStep,
    WaitHealthyStep,
    YamlStep,
    _Model,
    step_from_yaml,
)
from harness.scenario.topology import NEW_START_ORDER, SERVICES, Service
from harness.scenario.triggers import (
    Expectation,
    Trigger,
    TriggerName,
    YamlTrigger,
    trigger_from_yaml,
)
from simulators.home_assistant.fleet import FleetSpec
from simulators.home_assistant.limits import MAX_TIME_SCALE, MIN_TIME_SCALE
from simulators.home_assistant.load import LoadProfile, parse_profile

# The parts of a scenario are defined in steps.py and triggers.py; importers of this module
# find them here too, with the topology's names as this module has always offered them.
__all__ = ["NEW_SERVICES", "SERVICES", "STEP_KEYS", "CheckStep", "Duration", "Expectation",
           "FaultStep", "HoldStep", "LoadStep", "Phase", "RollbackStep", "Runtime", "Scenario",
           "Service", "ServiceStep", "ShadowStep", "Step", "Threshold", "ThresholdSpec",
           "TrafficStep", "Trigger", "TriggerName", "WaitHealthyStep", "YamlStep",
           "YamlTrigger", "parse_duration", "step_from_yaml", "trigger_from_yaml"]

#: what a scenario's ``new`` expands to (harness/scenario/topology.py)
NEW_SERVICES = NEW_START_ORDER
Runtime = Literal["process", "containers"]


def _both_runtimes() -> list[Runtime]:
    """The default ``runtimes`` (a named function: mypy types a lambda's list as list[str])."""
    return ["process", "containers"]


class Scenario(_Model):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")]
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    runtimes: list[Runtime] = Field(default_factory=_both_runtimes)
    # limits.py: below the minimum a hold is a blink no monitor tick sees
    time_scale: float = Field(default=1.0, ge=MIN_TIME_SCALE, le=MAX_TIME_SCALE)
    fleet: FleetSpec = Field(default_factory=FleetSpec)
    load: LoadProfile = Field(default_factory=lambda: parse_profile("20/s"))
    slos: list[ThresholdSpec] = Field(default_factory=lambda: [
        Threshold.parse("p(95) < 100ms"), Threshold.parse("error_rate < 0.1%"),
        Threshold.parse("loss == 0")])
    triggers: list[YamlTrigger] = Field(default_factory=list)
    rollback: list[YamlStep] = Field(default_factory=list)
    # faults on a clock (``at`` from when the load starts) or tied to a traffic step
    faults: list[YamlFault] = Field(default_factory=list)
    phases: list[Phase] = Field(min_length=1)
    expect: Expectation = Field(default_factory=Expectation)

    @field_validator("load", mode="before")
    @classmethod
    def _load(cls, value: Any) -> Any:
        return parse_profile(value)

    @model_validator(mode="after")
    def _coherent(self, info: ValidationInfo) -> Scenario:
        # The plan as a whole (harness/scenario/coherence.py). A caller that passes
        # context={"plan_findings": []} gets every finding, with where it is, instead of the
        # first error raised (the loader, to name each one's line).
        findings = plan_findings(self)
        sink = info.context.get("plan_findings") if isinstance(info.context, dict) else None
        if isinstance(sink, list):
            sink.extend(findings)
            return self
        for finding in findings:
            if finding.severity == "error":
                raise ValueError(finding.message)
        return self

    def scaled(self, seconds: float, time_scale: float | None = None) -> float:
        """A plan duration in real seconds under the run's time scale."""
        return seconds * (self.time_scale if time_scale is None else time_scale)
