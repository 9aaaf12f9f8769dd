"""The simulator's side of the rollback triggers and traffic gates. The rules themselves live in
``harness.scenario.rules``, shared with the real runner, so a rollback is decided, and worded,
alike in both ("new pipeline's error rate 11.19% (trigger: error_rate > 1%, window 10 s)").
Here is the model's evidence for them: its monitor's ticks and windows, and its books.

The model keeps counts, not events, so its loss and inconsistency evidence names no first
event; ``tests/des/test_triggers.py`` feeds one set of facts to both sides and asserts the same
decisions in the same words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.scenario import rules
from harness.scenario.rules import Firing, TriggerState, WindowEvidence, check_gate
from harness.scenario.rules.evidence import MonitorEvidence

from .monitor import Monitor, Window

if TYPE_CHECKING:
    from harness.scenario.model import Trigger

__all__ = ["Firing", "ModelEvidence", "TriggerState", "check_gate", "evaluate"]


@dataclass
class ModelEvidence(MonitorEvidence):
    """``rules.Evidence`` over the model: the monitor's, plus the books' counts."""

    monitor: Monitor

    def overdue(self, grace_s: float) -> tuple[int, str]:
        return self.monitor.books.overdue(self.monitor.now_s(), grace_s), ""

    def inconsistent(self, window: WindowEvidence,
                     grace_s: float) -> tuple[int, str]:  # noqa: ARG002 - see below
        # The books count a point wrong when it is written; shadow completeness (what grace_s
        # is for) is judged by the final accounting in the model, not live.
        assert isinstance(window, Window)  # the model's own windows, from window() above
        return window.inconsistent(), ""


def evaluate(triggers: Sequence[Trigger], monitor: Monitor,
             state: TriggerState) -> Firing | None:
    """The first trigger whose condition has held for its ``for:`` duration, if any."""
    return rules.evaluate(triggers, ModelEvidence(monitor), state)
