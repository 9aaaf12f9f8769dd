"""FAILURE_MODES.md #3, field type conflict: InfluxDB refuses the batch and the writer drops it.

Two changes that shipped together. data-storage writes each attribute as a field of its own
(``attr_battery_level=87`` as a float) instead of the one ``attributes`` JSON string of the
contract, so an attribute that changes JSON type (``87`` -> ``"low"``) no longer fits the field
InfluxDB already typed. InfluxDB answers the batch 400 "partial write: field type conflict",
and the writer, seeing a non-retryable error, acknowledges the batch and moves on instead of
isolating the refused lines into the dead-letter table. Caught by the loss check on a fleet
whose attributes change type (``scenarios/fleet_churn.yaml``).

Run in storage's place: ``python -m tests.mutants.m03_field_type_conflict``.
"""

from __future__ import annotations

import logging
from typing import Any

import pipeline.storage.intake as intake
from pipeline.common.batch_writer import BatchWriter
from pipeline.common.events import Event
from pipeline.common.influx import WriteError
from pipeline.common.line_protocol import LineProtocolError, escape_tag, string_field
from pipeline.storage.__main__ import main

log = logging.getLogger("tests.mutants.m03")
_to_line = intake.to_line


def _typed(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(float(value))
    if isinstance(value, str):
        return string_field(value)
    return None  # lists, objects, null: left out


def to_line_typed_attributes(event: Event, *, writer: Any, stored_at_ns: int) -> str:
    head, timestamp = _to_line(event, writer=writer, stored_at_ns=stored_at_ns).rsplit(" ", 1)
    extra = []
    for key, value in sorted(event.attributes.items()):
        rendered = _typed(value)
        if rendered is None:
            continue
        try:
            extra.append(f",{escape_tag('attr_' + key)}={rendered}")  # BUG: one field per type
        except LineProtocolError:
            continue
    return head + "".join(extra) + " " + timestamp


async def drop_refused_batch(self: BatchWriter, rows: list[tuple[int, bytes]],
                             error: WriteError) -> None:
    # BUG: "InfluxDB refused it, nothing more to do": the batch leaves the queue, unwritten.
    await self.queue.ack(rows[-1][0])
    log.warning("InfluxDB refused a batch; dropped", extra={"lines": len(rows),
                                                            "reason": error.message})


intake.to_line = to_line_typed_attributes
BatchWriter._isolate = drop_refused_batch  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
