"""Write acknowledgements: when InfluxDB answered 204 for the points a writer stamped.

A point's ``stored_at`` is inside the point, so it is stamped before the point is written: it
cannot be the moment InfluxDB made the point durable. So after each 204 the writer records that
moment, once per stamp the batch carried, as a small point of its own:

    home_assistant_write_acks,writer=new acked_at=<204, ns>i <stamp, ns>

in the same database. Whoever measures latency (the harness's verdict) joins a point to its ack
by (writer, stored_at) and measures time_fired -> 204 on both paths alike. The ack is written
in a request of its own, once, right after the 204 it records: never mixed with events (a
refused ack must not hold events back) and never retried (an ack that did not land leaves its
points measured to their stamp, and the verdict counts how many).

Two batches carrying one stamp (a large intake split in two) record two acks under one key, and
InfluxDB keeps the later: those points are measured to the later 204, never too early.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pipeline.common.events import Writer
from pipeline.common.influx import InfluxWriter, WriteError

__all__ = ["ACKS_MEASUREMENT", "ack_lines", "stamp_of", "write_acks"]

log = logging.getLogger(__name__)

ACKS_MEASUREMENT = "home_assistant_write_acks"
_STAMP_FIELD = "_stored_at="  # the writer's own stamp: to_line writes it as the last field


def stamp_of(line: str) -> int | None:
    """The writer's stamp (``{writer}_stored_at``) of a line ``to_line`` wrote, else None."""
    head = line[: line.rfind(" ")]
    at = head.rfind(_STAMP_FIELD)
    if at < 0 or not head.endswith("i"):
        return None
    value = head[at + len(_STAMP_FIELD) : -1]
    return int(value) if value.isdigit() else None


def ack_lines(writer: Writer, stamps: Iterable[int], acked_at_ns: int) -> list[str]:
    """One ack point per distinct stamp."""
    return [f"{ACKS_MEASUREMENT},writer={writer} acked_at={acked_at_ns}i {stamp}"
            for stamp in sorted(set(stamps))]


async def write_acks(influx: InfluxWriter, writer: Writer, stamps: Iterable[int],
                     acked_at_ns: int) -> bool:
    """Record the 204 at ``acked_at_ns`` for ``stamps``; False (and nothing raised) when
    InfluxDB did not take the ack."""
    lines = ack_lines(writer, stamps, acked_at_ns)
    if not lines:
        return True
    try:
        await influx.write(lines)
    except WriteError:
        return False
    except Exception:  # noqa: BLE001 - bookkeeping must never stall the events' writer
        log.exception("could not record a write's acknowledgement")
        return False
    return True
