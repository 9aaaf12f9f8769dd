"""FAILURE_MODES.md #11, processing time as point time, read in a local time zone.

data-storage stamps each point with the moment it handles the event instead of the event's
``time_fired``, and takes that moment from a wall clock in the home's time zone
(Europe/Amsterdam) as if it were UTC: every point lands an hour or two away from when the
event happened, and a retried write would add a point instead of overwriting one. Caught by
the consistency check of each stored point against the ledger's ``time_fired``.

Run in storage's place: ``python -m tests.mutants.m11_processing_time``.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pipeline.storage.intake as intake
from pipeline.common.events import Event
from pipeline.storage.__main__ import main

LOCAL = ZoneInfo("Europe/Amsterdam")
_to_line = intake.to_line


def to_line_at_processing_time(event: Event, *, writer: Any, stored_at_ns: int) -> str:
    offset = datetime.now(LOCAL).utcoffset()
    assert offset is not None
    # BUG: "now" on the local wall clock, taken for UTC, instead of time_fired.
    point_ns = time.time_ns() + int(offset.total_seconds()) * 1_000_000_000
    return _to_line(event.model_copy(update={"time_fired_ns": point_ns}), writer=writer,
                    stored_at_ns=stored_at_ns)


intake.to_line = to_line_at_processing_time

if __name__ == "__main__":
    main()
