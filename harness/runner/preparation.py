"""What the runtime must set up before a service first starts, read off the scenario's faults.

Some faults cannot be applied to a service already running as usual: a clock the harness can
move needs libfaketime preloaded when the process starts (``clock_skew``), and a disk that can
fill must be under the data directory before the service opens its queues (``disk_full``).
Only the services those faults target are started that way: every other service runs exactly
as in production, so a scenario without such faults needs neither libfaketime nor root.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from harness.scenario.faults import Fault
from harness.scenario.host_faults import ClockSkew, DiskFull
from harness.scenario.model import FaultStep, Scenario

__all__ = ["HostPreparation", "host_preparation", "scenario_faults"]


def scenario_faults(scenario: Scenario) -> Iterator[Fault]:
    """Every fault the scenario may inject: its phases' and rollback's fault steps and its own
    ``faults:`` list."""
    steps = [s for p in scenario.phases for s in p.steps] + list(scenario.rollback)
    yield from (s.fault for s in steps if isinstance(s, FaultStep))
    yield from scenario.faults


@dataclass(frozen=True, slots=True)
class HostPreparation:
    skewable: frozenset[str] = frozenset()
    small_disks: dict[str, int] = field(default_factory=dict)  # service -> bytes


def host_preparation(scenario: Scenario) -> HostPreparation:
    """The services to start on a movable clock, and the size of each small disk (the largest
    any disk_full fault of that service asks for: one disk per service for the whole run)."""
    skewable: set[str] = set()
    disks: dict[str, int] = {}
    for fault in scenario_faults(scenario):
        if isinstance(fault, ClockSkew):
            skewable.update(fault.service)
        elif isinstance(fault, DiskFull):
            for service in fault.service:
                disks[service] = max(disks.get(service, 0), int(fault.size))
    return HostPreparation(frozenset(skewable), disks)
