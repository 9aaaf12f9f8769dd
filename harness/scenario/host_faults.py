"""Faults of the machine a service runs on, after Chaos Mesh's TimeChaos and a full disk.

``clock_skew``: the service's wall clock (``time.time()``, what it stamps ``received_at``,
``enriched_at``, ``stored_at`` and announces routing boundaries with) is off by ``offset``, a
signed duration (``+30s``, ``-2m``). The offset is real time, never scaled by ``time_scale``:
it is a property of the clock, compared with real quantities (admin-api's lead, timeouts),
not a stretch of the plan. Only the wall clock moves: a skewed host's monotonic clock (what
timers, backoffs and breakers run on) keeps ticking as before, as with a real NTP fault.

``disk_full``: the service's data directory (its durable queues) is on a small disk of
``size`` bytes (a tmpfs), and a filler file takes every free byte of it while the fault is in
force. What must hold: a queue that cannot commit refuses new work (HTTP 503 to its sender,
which keeps the events in its own outbox and retries); it never acknowledges and drops.
``size`` is the disk, not the filler: at least 16 MiB, room for two SQLite queues whose
write-ahead logs grow to about 4 MiB each before their first checkpoint (storage has one for
production and one for shadow); below that the service would fail with no fault at all.

Both act only on the services started for them (harness/runner/preparation.py scans the
scenario before anything starts): a clock that can be moved needs libfaketime preloaded at
start, a small disk must be mounted before the service opens its queues.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ByteSize, Field, field_serializer, model_validator

from harness.scenario.durations import parse_duration
from harness.scenario.fault_base import _Timed, one_or_many
from harness.scenario.topology import PipelineService, QueueService
from simulators.home_assistant.limits import MAX_DISK_BYTES, MAX_DURATION_S

__all__ = ["MAX_OFFSET_S", "MIN_DISK_BYTES", "ClockSkew", "DiskFull", "parse_offset"]

# The pipeline's own services: libfaketime reaches a process through libc, which influxd (Go)
# and anything not started by the runtime do not go through.
SkewService = PipelineService
# The services that keep durable queues in their data directory.
DiskService = QueueService

MAX_OFFSET_S = MAX_DURATION_S  # a month: beyond that it is a typo, not a skew
MIN_DISK_BYTES = 16 * 1024 * 1024
DEFAULT_DISK_BYTES = 64 * 1024 * 1024

_OFFSET_EXAMPLE = "a signed duration like '+30s', '-2m' or '+1h'"


def parse_offset(value: Any) -> float:
    """``+30s`` -> 30.0, ``-2m`` -> -120.0. The sign is required: which way a clock is off
    is the whole point of the fault, and a bare ``30s`` would hide a forgotten minus."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        # ValueError, not TypeError: pydantic turns only the former into a validation error.
        raise ValueError(f"offset {value!r}: expected {_OFFSET_EXAMPLE}")  # noqa: TRY004
    text = str(value).strip()
    if not text or text[0] not in "+-":
        raise ValueError(f"offset {value!r} has no sign: write '+{text}' (clock ahead) or "
                         f"'-{text}' (clock behind)")
    try:
        seconds = parse_duration(text[1:], maximum=math.inf)  # bounded below, in its words
    except ValueError:
        raise ValueError(f"offset {value!r}: expected {_OFFSET_EXAMPLE}") from None
    if seconds == 0:
        raise ValueError(f"offset {value!r} is zero: a clock_skew fault needs a clock that is off")
    if seconds > MAX_OFFSET_S:
        raise ValueError(f"offset {value!r}: at most 30 days either way")
    return -seconds if text[0] == "-" else seconds


Offset = Annotated[float, BeforeValidator(parse_offset)]


def _needs(field: str, example: str) -> Any:
    """A ``before`` validator naming the missing field with an example (pydantic's own
    'Field required' does not say what to write)."""

    # pydantic takes a before-validator for a class method by its first parameter's name.
    def check(cls: type, data: Any) -> Any:  # noqa: ARG001 - named so for pydantic
        if isinstance(data, dict) and field not in data:
            kind = data.get("kind", "this")
            raise ValueError(f"a {kind} fault needs {field}: {example}")
        return data

    return model_validator(mode="before")(check)


class ClockSkew(_Timed):
    """The services' wall clocks are ``offset`` off (libfaketime), until healed."""

    kind: Literal["clock_skew"]
    service: Annotated[list[SkewService], BeforeValidator(one_or_many), Field(min_length=1)]
    offset: Offset

    _offset_given = _needs("offset", _OFFSET_EXAMPLE)

    @field_serializer("offset")
    def _as_written(self, offset: float) -> str:
        # Signed text, so a dump (a chaos schedule, a shrunk scenario) validates again: a
        # positive number would have lost its sign.
        return format_offset(offset)

    def describe(self) -> str:
        return f"clock_skew {', '.join(self.service)} ({format_offset(self.offset)})"


class DiskFull(_Timed):
    """The services' data disks (``size`` bytes each) are full, until healed."""

    kind: Literal["disk_full"]
    service: Annotated[list[DiskService], BeforeValidator(one_or_many), Field(min_length=1)]
    size: ByteSize = ByteSize(DEFAULT_DISK_BYTES)

    @model_validator(mode="after")
    def _room_to_work(self) -> DiskFull:
        if self.size < MIN_DISK_BYTES:
            raise ValueError(f"disk_full size {self.size.human_readable()}: at least 16MiB, or "
                             "the service's queues cannot work even before the disk is filled")
        if self.size > MAX_DISK_BYTES:
            raise ValueError(f"disk_full size {self.size.human_readable()}: at most 1GiB (the "
                             "disk is a tmpfs, held in memory, and the fault fills all of it)")
        return self

    def describe(self) -> str:
        return f"disk_full {', '.join(self.service)} ({self.size.human_readable()} disk)"


def format_offset(seconds: float) -> str:
    """``+30s``, ``-2m``, ``+1.5s``: the way a scenario file writes it."""
    sign = "-" if seconds < 0 else "+"
    value = abs(seconds)
    for unit, size in (("h", 3600.0), ("m", 60.0)):
        if value >= size and value % size == 0:
            return f"{sign}{value / size:g}{unit}"
    return f"{sign}{value:g}s"
