"""When a fault is injected and healed: the scenario's ``at`` / ``for`` / ``during`` in run time.

``at`` and ``for`` are plan time, scaled like holds; ``at`` counts from when the fault is
scheduled (the run's start for the scenario's own ``faults:`` list, the traffic step's start for
a ``during: traffic N`` fault). A fault tied to a traffic step is also healed when that step
ends, sooner if its own ``for`` runs out first. A fault never blocks the steps after it, and
what is still broken when the load stops is healed before the drain: the verdict judges what
the pipeline does once the world recovers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.scenario.faults import during_percent

if TYPE_CHECKING:
    from harness.scenario.faults import Fault


@dataclass(frozen=True, slots=True)
class FaultTimes:
    at_s: float  # real seconds after it is scheduled
    lasts_s: float | None  # real seconds it lasts, None: until healed otherwise (or never)
    during: int | None  # the traffic percentage whose step it is tied to

    def suffix(self) -> str:
        """What the timeline's marker adds to the fault's description."""
        if self.lasts_s is not None:
            return f" for {self.lasts_s:g} s"
        return f" during traffic {self.during}%" if self.during is not None else ""


def fault_times(fault: Fault, time_scale: float) -> FaultTimes:
    lasts = None if fault.for_ is None else fault.for_ * time_scale
    return FaultTimes(fault.at * time_scale, lasts, during_percent(fault))


def armed_at_start(faults: Iterable[Fault]) -> list[Fault]:
    """The faults scheduled when the run starts: all but those tied to a traffic step."""
    return [f for f in faults if during_percent(f) is None]


def tied_to_step(faults: Iterable[Fault], percent: int) -> list[Fault]:
    """The faults injected when the traffic step to ``percent`` starts."""
    return [f for f in faults if during_percent(f) == percent]
