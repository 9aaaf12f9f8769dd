"""FAILURE_MODES.md #1, schema mismatch between services: the receiver rejects every event.

data-storage still reads the batch schema of an older release, in which an event carried its
point time as ``timestamp``. Every event enrichment sends (``time_fired_ns``) makes it raise
``KeyError`` -> HTTP 500 for the whole batch; enrichment retries, its breaker opens, and nothing
reaches InfluxDB. Caught by the loss check and the error rate (failed deliveries, events held
behind the open breaker).

Run in storage's place: ``python -m tests.mutants.m01_schema_mismatch``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pipeline.storage.store as store
from pipeline.storage.__main__ import main

_judge_events = store.judge_events


def judge_events_old_schema(items: Sequence[Any], *, stored_at_ns: int):  # noqa: ANN201
    for item in items:
        item["time_fired_ns"] = item["timestamp"]  # BUG: the old field name -> KeyError -> 500
    return _judge_events(items, stored_at_ns=stored_at_ns)


store.judge_events = judge_events_old_schema

if __name__ == "__main__":
    main()
