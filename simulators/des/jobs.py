"""What moves through the model: jobs (micro-batches of events), and the record of each tick
of the source that the loss trigger counts against.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PRODUCTION", "SHADOW", "Fired", "Job"]

PRODUCTION, SHADOW = 0, 1


@dataclass(slots=True)
class Fired:
    """``n`` events fired at ``t`` to at least one subscriber; ``unseen`` of them are not (yet)
    in production as the monitor sees it. ``due`` once the loss check's cursor passed it."""

    t: float
    n: int
    unseen: int
    due: bool = False


@dataclass(slots=True)
class Job:
    """``n`` events fired at ``t0`` travelling together. ``wait`` is the waiting the model has
    added so far (see latency.py); ``enq`` when the job entered the queue it is in; ``stamp``
    when it was stamped ``stored_at`` (legacy: its write began; new: storage accepted it)."""

    n: int
    t0: float
    enq: float
    target: int = PRODUCTION
    fired: Fired | None = None  # production jobs: the tick record the loss check counts
    wait: float = 0.0
    stamp: float = 0.0

    def split(self, k: int) -> Job:
        """Take the first ``k`` events off into a job of their own (this one keeps the rest)."""
        self.n -= k
        return Job(k, self.t0, self.enq, self.target, self.fired, self.wait, self.stamp)

