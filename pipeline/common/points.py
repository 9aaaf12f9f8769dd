"""The InfluxDB data contract (DESIGN.md "Data contracts"): an `Event` as one point.

`to_line` is the one place that knows it; `pipeline.common.normalise` accepts only what it can
write exactly, and InfluxDB 1.x returns it unchanged.
"""

from __future__ import annotations

import math

from pipeline.common.events import MEASUREMENT, Event, Writer
from pipeline.common.line_protocol import (
    LineProtocolError,
    attributes_json,
    escape_measurement,
    escape_tag,
    string_field,
)

__all__ = ["to_line"]

_MEASUREMENT_PREFIX = escape_measurement(MEASUREMENT)


def to_line(event: Event, *, writer: Writer, stored_at_ns: int) -> str:
    """The event as one line of InfluxDB line protocol, per the data contract.

    The point's time is ``time_fired`` (never processing time), so a retried or duplicated
    write overwrites the same point instead of adding one.
    """
    if writer not in ("legacy", "new"):
        raise ValueError(f"writer must be 'legacy' or 'new', got {writer!r}")
    tags = "".join(
        f",{key}={escape_tag(value)}"
        # Sorted by key (InfluxDB's canonical order). Line protocol has no empty tag value:
        # a tag left out is how InfluxDB stores (and returns) "".
        for key, value in (("domain", event.domain), ("entity_id", event.entity_id),
                           ("event_type", event.event_type))
        if value
    )
    fields = [
        f"context_id={string_field(event.context_id)}",
        # Always strings, never numbers or absent: one field type forever (FAILURE_MODES.md #3).
        f"state={string_field(event.state or '')}",
        f"old_state={string_field(event.old_state or '')}",
        f"attributes={string_field(attributes_json(event.attributes))}",
        f"received_at={event.received_at_ns}i",
    ]
    if event.enriched_at_ns is not None:
        fields.append(f"enriched_at={event.enriched_at_ns}i")
    fields.append(f"stored_at={stored_at_ns}i")
    for name, value in sorted((event.weather or {}).items()):
        key = escape_tag(f"weather_{name}")
        if isinstance(value, str):
            fields.append(f"{key}={string_field(value)}")
        else:
            number = float(value)
            if not math.isfinite(number):
                raise LineProtocolError(f"weather.{name}: {value!r} is not finite")
            # repr() of a float is exact (shortest round-trip) and always a float literal.
            fields.append(f"{key}={number!r}")
    fields.append(f"weather_enriched={'true' if event.weather_enriched else 'false'}")
    fields.append(f"writer={string_field(writer)}")
    # InfluxDB merges two writes of one point field by field: ``writer`` keeps the last one,
    # but each writer's own stamp survives, so a point written by both paths shows it.
    fields.append(f"{writer}_stored_at={stored_at_ns}i")
    return f"{_MEASUREMENT_PREFIX}{tags} {','.join(fields)} {event.time_fired_ns}"
