"""Whether a scenario can run on a pipeline file's services: every fault it injects must
name a service (or a hop between services) the pipeline has.

Steps are another matter: ``start: enrichment`` on a plan without enrichment is skipped and
said so, since the scenario's plan still holds for the services that are there; a fault on a
service that is not there would test nothing, and its run would pass without having tried.
"""

from __future__ import annotations

from harness.pipeline_file import PipelineSpec
from harness.scenario.faults import ServiceFault, ToxicFault, WeatherFault
from harness.scenario.host_faults import ClockSkew, DiskFull
from harness.scenario.model import Scenario
from harness.scenario.topology import HOP_ENDS

from .preparation import scenario_faults

__all__ = ["unfit"]


def unfit(scenario: Scenario, pipeline: PipelineSpec) -> list[str]:
    """What in ``scenario`` the services of ``pipeline`` cannot be given, in words."""
    problems = []
    targets: list[str]
    for fault in scenario_faults(scenario):
        if isinstance(fault, ServiceFault | ClockSkew | DiskFull):
            targets = [s for s in fault.service if not _there(s, pipeline)]
        elif isinstance(fault, ToxicFault):
            targets = [s for s in HOP_ENDS[fault.hop] if not _there(s, pipeline)]
        elif isinstance(fault, WeatherFault):
            targets = [] if _there("weather", pipeline) else ["weather"]
        else:
            continue
        if targets:
            named = ", ".join(t if t != "weather" else "weather (through enrichment, its only "
                              "client)" for t in targets)
            problems.append(f"{fault.describe()} needs {named}, which pipeline "
                            f"{pipeline.name!r} does not have")
    return problems


def _there(service: str, pipeline: PipelineSpec) -> bool:
    return pipeline.reaches(service)
