"""What a scenario may not ask of a Home Assistant the harness did not start."""

from __future__ import annotations

from harness.scenario.faults import HomeAssistantFault
from harness.scenario.model import FaultStep, LoadStep, Scenario

__all__ = ["live_problems"]


def live_problems(scenario: Scenario) -> list[str]:
    """One line per thing the scenario asks that only the fake Home Assistant can do."""
    problems = []
    # A live Home Assistant fires what its home does: the harness has no load to give it.
    if "load" in scenario.model_fields_set:
        problems.append("a load profile (top-level 'load:'): a live Home Assistant fires what "
                        "its own automations and devices do; remove the load section")
    for phase in scenario.phases:
        if phase.load is not None:
            problems.append(f"phase {phase.name!r} sets 'load:'; a live Home Assistant's events "
                            "cannot be paced by the harness")
    steps = [(p.name, s) for p in scenario.phases for s in p.steps]
    steps += [("rollback", s) for s in scenario.rollback]
    for where, step in steps:
        if isinstance(step, LoadStep):
            problems.append(f"phase {where!r} has a load step; a live Home Assistant's events "
                            "cannot be paced by the harness")
    faults = [s.fault for _, s in steps if isinstance(s, FaultStep)] + list(scenario.faults)
    for fault in faults:
        if isinstance(fault, HomeAssistantFault):
            problems.append(f"fault {fault.kind!r} is done by the fake Home Assistant itself; "
                            "against a live one use a network fault on the ha-ingestion or "
                            "ha-legacy hop (the fault proxy) instead")
    return problems
