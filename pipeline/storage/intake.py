"""From a ``POST /api/v1/events`` body to line protocol, one verdict per event.

The body as a whole is refused (4xx) only when it is not a batch at all: not JSON, not an
object, no ``"events"`` list. Inside a batch every event is judged alone: a bad one is listed
with its index and reason and the good ones are stored (the contract's individual rejection).
"Good" means storable exactly: the `Event` model accepts it and `to_line` can write it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from pipeline.common.bad_input import BadRequest
from pipeline.common.events import Event, EventKey, describe_raw
from pipeline.common.points import to_line

__all__ = ["TARGETS", "Intake", "Rejection", "Target", "judge_events", "parse_batch_body"]

Target = Literal["production", "shadow"]
TARGETS: tuple[Target, ...] = ("production", "shadow")

#: How many of an event's validation errors a rejection reason spells out.
_ERRORS_SHOWN = 3


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    event: str | None  # the event's key as far as it can be read: entity_id@time_fired
    reason: str  # for the sender: names the field and what is wrong
    kind: str  # low-cardinality label for cutover_events_rejected_total{reason}

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "event": self.event, "reason": self.reason}


@dataclass(slots=True)
class Intake:
    """The accepted events of one batch, as lines per target, and the rejected ones."""

    lines: dict[Target, list[str]] = field(default_factory=lambda: {t: [] for t in TARGETS})
    keys: dict[Target, list[EventKey]] = field(default_factory=lambda: {t: [] for t in TARGETS})
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return sum(len(keys) for keys in self.keys.values())


def parse_batch_body(body: bytes) -> list[Any]:
    """The ``events`` list of a request body, or `BadRequest` (400 not JSON, 422 not a batch)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest("not_json", f"request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadRequest(
            "validation",
            f'request body must be a JSON object {{"events": [...]}}, got a JSON {_json_type(doc)}',
            status=422,
        )
    if "events" not in doc:
        raise BadRequest(
            "validation",
            'request body has no "events" field: expected {"events": [...]}',
            status=422,
        )
    extra = sorted(set(doc) - {"events"})
    if extra:
        # Another sender's schema must be heard, not ignored (FAILURE_MODES.md #1), as in
        # enrichment: {"events": [...], "evnets": [...]} is not a batch of what was meant.
        raise BadRequest(
            "validation", f'unknown top-level field(s) {extra}: only "events"', status=422
        )
    events = doc["events"]
    if not isinstance(events, list):
        raise BadRequest(
            "validation",
            f'"events" must be a list of events, got a JSON {_json_type(events)}',
            status=422,
        )
    return events


def judge_events(items: Sequence[Any], *, stored_at_ns: int) -> Intake:
    """Validate each item and render the accepted ones with ``writer="new"``."""
    intake = Intake()
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            intake.rejected.append(
                Rejection(
                    index,
                    None,
                    f"expected an event object, got a JSON {_json_type(item)}",
                    "not_object",
                )
            )
            continue
        # The event's name only for a rejection: computing it for every event cost a sixth
        # of this loop.
        try:
            event = Event.model_validate(item)
        except ValidationError as exc:
            intake.rejected.append(Rejection(index, describe_raw(item), _describe(exc),
                                             "invalid"))
            continue
        try:
            line = to_line(event, writer="new", stored_at_ns=stored_at_ns)
            # BatchWriter encodes on submit; a failure there would refuse the whole batch.
            line.encode()
        except (ValueError, TypeError) as exc:  # LineProtocolError, orjson's, UnicodeEncodeError
            intake.rejected.append(
                Rejection(index, describe_raw(item), f"cannot be written to InfluxDB: {exc}",
                          "unwritable")
            )
            continue
        intake.lines[event.target].append(line)
        intake.keys[event.target].append(event.key)
    return intake


def _describe(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    parts = []
    for err in errors[:_ERRORS_SHOWN]:
        where = ".".join(str(p) for p in err["loc"]) or "event"
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}")
    more = f" (and {len(errors) - _ERRORS_SHOWN} more)" if len(errors) > _ERRORS_SHOWN else ""
    return "; ".join(parts) + more


def _json_type(value: object) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "boolean"
        case int() | float():
            return "number"
        case str():
            return "string"
        case list():
            return "array"
        case _:
            return "object"
