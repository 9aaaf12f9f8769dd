"""``cutover chaos``: a migration under a random, reproducible schedule of faults, shrunk to a
minimal failing schedule when the verdict fails (``schedule``, ``shrink``, ``run``)."""

from .schedule import (DEFAULT_VOCABULARY, VOCABULARY, Schedule, ScheduledFault, ScheduleError,
                       draw_schedule, scenario_for)
from .shrink import Attempt, ShrinkResult, shrink

__all__ = ["DEFAULT_VOCABULARY", "VOCABULARY", "Attempt", "Schedule", "ScheduleError",
           "ScheduledFault", "ShrinkResult", "draw_schedule", "scenario_for", "shrink"]
