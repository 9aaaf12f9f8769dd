"""What the plan's checks (harness/scenario/coherence.py) read of a scenario, and what they
find.

``Scenario`` is the part of harness.scenario.model.Scenario the checks read, as a protocol:
the model runs the checks when it is validated, so the checks cannot import the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from harness.scenario.faults import Fault
from harness.scenario.steps import Phase, Step, Threshold
from harness.scenario.triggers import Expectation, Trigger
from simulators.home_assistant.load import LoadProfile

__all__ = ["Finding", "Loc", "Scenario", "Severity"]

Loc = tuple[str | int, ...]
Severity = Literal["error", "warning"]


class Scenario(Protocol):
    """What the checks read of a scenario."""

    @property
    def time_scale(self) -> float: ...
    @property
    def load(self) -> LoadProfile: ...
    @property
    def slos(self) -> Sequence[Threshold]: ...
    @property
    def triggers(self) -> Sequence[Trigger]: ...
    @property
    def rollback(self) -> Sequence[Step]: ...
    @property
    def faults(self) -> Sequence[Fault]: ...
    @property
    def phases(self) -> Sequence[Phase]: ...
    @property
    def expect(self) -> Expectation: ...


@dataclass(frozen=True)
class Finding:
    path: Loc  # the key (or list item) of the file the finding is about
    severity: Severity
    message: str
