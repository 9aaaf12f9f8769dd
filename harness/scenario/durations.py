"""Durations as scenario files write them: the one syntax of
``simulators/home_assistant/durations.py`` (load profiles share it)."""

from __future__ import annotations

from simulators.home_assistant.durations import DURATION_PATTERN, Duration, parse_duration

__all__ = ["DURATION_PATTERN", "Duration", "parse_duration"]
