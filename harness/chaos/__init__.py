"""``cutover chaos``: a migration under a random, reproducible schedule of faults, shrunk to a
minimal failing schedule when the verdict fails (``schedule``, ``shrink``, ``run``)."""

from .schedule import (
                       DEFAULT_VOCABULARY,
                       VOCABULARY,
                       Schedule,
                       ScheduledFault,
                       ScheduleError,
                       draw_schedule,
                       scenario_for,
)
from .shrink import Attempt, Reproduction, ShrinkResult, shrink

__all__ = ["DEFAULT_VOCABULARY", "VOCABULARY", "Attempt", "Reproduction", "Schedule",
           "ScheduleError", "ScheduledFault", "ShrinkResult", "draw_schedule", "scenario_for",
           "shrink"]
