"""The services' building blocks: a FIFO of jobs with an event count, and the scheduled wake-up
that makes an idle writer's wake and its batch window one step."""

from __future__ import annotations

from collections import deque

import simpy
from simpy.events import NORMAL

from .jobs import Job

__all__ = ["Queue", "trigger_in"]


def trigger_in(env: simpy.Environment, event: simpy.Event, delay: float) -> None:
    """Succeed ``event`` ``delay`` seconds from now (one scheduled event, as a Timeout is):
    how an idle writer's wake-up and its batch window become a single step."""
    event._ok = True  # noqa: SLF001 - what Timeout.__init__ does
    event._value = None  # noqa: SLF001
    env.schedule(event, NORMAL, delay)


class Queue:
    """A FIFO of jobs with an event count; durable ones outlive their service's crashes."""

    __slots__ = ("jobs", "depth")

    def __init__(self) -> None:
        self.jobs: deque[Job] = deque()
        self.depth = 0

    def put(self, job: Job) -> None:
        self.jobs.append(job)
        self.depth += job.n

    def take(self, limit: int) -> tuple[list[Job], int]:
        """Up to ``limit`` events from the head, splitting a job if needed."""
        out: list[Job] = []
        n = 0
        jobs = self.jobs
        while jobs and n < limit:
            job = jobs[0]
            if n + job.n <= limit:
                jobs.popleft()
                out.append(job)
                n += job.n
            else:
                part = job.split(limit - n)
                out.append(part)
                n += part.n
        self.depth -= n
        return out, n

    def put_back(self, batch: list[Job]) -> None:
        """Return a batch that was not delivered to the head, in order."""
        for job in reversed(batch):
            self.jobs.appendleft(job)
            self.depth += job.n

    def clear(self) -> list[Job]:
        jobs = list(self.jobs)
        self.jobs.clear()
        self.depth = 0
        return jobs
