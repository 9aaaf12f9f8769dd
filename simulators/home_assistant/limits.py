"""The largest sizes, rates and times a scenario (or the CLI) may ask for: written once here.

A number beyond these is a typo or a wish the fake Home Assistant cannot grant, and a run
that tried would fail in a way that blames the wrong party (a fleet built until memory runs
out, "lost 25000" pinned on the pipeline when the fake could not send that many). So every
bound is refused when the scenario is loaded, with the reason below in its message.

The figures are this project's own measurements on its 2-core CI machine:

- One Python ``websockets`` connection carries about 70,000 small messages/s. A run has two
  subscribers (legacy and websocket-ingestion: every event is two messages) and the fake
  appends each event to its ledger in the same process, so about 35,000 events/s is the most
  the fake could ever send; ``MAX_RATE`` keeps a margin below that so that a shortfall at the
  bound is the pipeline's, not the fake's.
- Building the fleet costs about 0.3 ms per entity, and ``get_states`` answers with every
  entity in one frame of about 420 bytes per entity: 100,000 entities take ~30 s to build and
  make a ~42 MB answer, inside the 64 MiB frame the pipeline's client accepts (~150,000 would
  not fit). Large real installations have 5,000-20,000 entities.
"""

from __future__ import annotations

__all__ = [
    "MAX_BURST", "MAX_DISK_BYTES", "MAX_DURATION_S", "MAX_ENTITIES", "MAX_RATE",
    "MAX_REPLAY_SPEED", "MAX_TIME_SCALE", "MAX_TOXIC_BYTES", "MAX_TOXIC_RATE_KBS",
    "MIN_TIME_SCALE", "OutOfBounds", "human_seconds",
]

class OutOfBounds(ValueError):  # a ValueError: pydantic reports only those as bad input
    """A value beyond a bound below: its message says what is possible, no syntax hint needed."""


MAX_ENTITIES = 100_000
ENTITIES_WHY = ("what the fake Home Assistant can serve: its get_states answer must fit the "
                "64 MiB frame the pipeline accepts, and building 100,000 entities already "
                "takes ~30 s")

MAX_RATE = 20_000.0  # events per second
RATE_WHY = ("what the fake Home Assistant can send: about 35,000 events/s to the run's two "
            "subscribers at best (70,000 websocket messages/s on one core), less its ledger; "
            "above it a shortfall would be the fake's, not the pipeline's")

MAX_BURST = 100_000  # events fired at once: five seconds of MAX_RATE
BURST_WHY = ("five seconds of the fake's top rate, fired at once; the run's drain then waits "
             "for every one of them to be stored")

MAX_DURATION_S = 30 * 86_400.0  # one written duration, and a whole plan, in plan time
DURATION_WHY = "a month: the longest plan a scenario may describe (the seed's plan is 8 days)"

# The plan's durations are multiplied by the time scale: below 0.001 a 5-minute hold is a
# 0.3 s blink the monitor (one tick a second) never sees; above 100 an hour is four days.
MIN_TIME_SCALE = 0.001
MAX_TIME_SCALE = 100.0

MAX_REPLAY_SPEED = 1000.0  # a recording replayed faster than this is a burst, not a replay

# Toxiproxy takes 64-bit integers; beyond these a toxic is not a fault but a typo.
MAX_TOXIC_RATE_KBS = 10_000_000  # 10 GB/s: no link here is faster
MAX_TOXIC_BYTES = 1 << 40  # 1 TiB: far beyond what any hop carries in a run

# disk_full's disk is a tmpfs, and the fault fills it: every byte of it is memory.
MAX_DISK_BYTES = 1 << 30  # 1 GiB


def human_seconds(seconds: float) -> str:
    """``2592000`` -> ``30d``, ``90`` -> ``1.5m``: a bound the way a scenario writes it."""
    for unit, size in (("d", 86_400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"
