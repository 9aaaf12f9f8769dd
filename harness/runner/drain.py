"""When a pipeline has stored all it ever will: the drain rule, for a run's drain and for a
conformance clause's settling alike."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["QuietPolls"]


@dataclass(slots=True)
class QuietPolls:
    """Fed one poll at a time; quiet once nothing is queued in any service (their stats'
    ``queue_depth``, CONTRACT.md) and the stored count has not moved, ``polls`` polls in a row.
    What is missing then is not on its way: it is lost."""

    polls: int = 3
    _last_stored: int | None = None
    _in_a_row: int = 0

    def observe(self, queue_depth: int, stored: int) -> bool:
        settled = queue_depth == 0 and stored == self._last_stored
        self._last_stored = stored
        self._in_a_row = self._in_a_row + 1 if settled else 0
        return self._in_a_row >= self.polls
