"""A ``POST /api/v1/events`` body -> the valid events and, one by one, the rejected ones.

Per the contract, a bad event never fails the good ones in its batch: each element is
validated alone. Only a body that is not a batch at all (not JSON, no "events" list) is
refused as a whole, with a 4xx saying why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from pipeline.common.bad_input import BadRequest
from pipeline.common.events import Event, describe_raw

__all__ = ["Rejection", "parse_batch"]


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    event: str | None  # the event's key as far as it can be read: entity_id@time_fired
    reason: str  # for humans: the field at fault and why
    kind: str  # for the metric label: a small fixed set (pydantic's error types)

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "event": self.event, "reason": self.reason}


def parse_batch(body: bytes) -> tuple[list[Event], list[Rejection]]:
    """Raises `BadRequest` when the body is not a batch; otherwise sorts its events."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest("not_json", f"request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
        raise BadRequest(
            "no_events", 'request body must be a JSON object with an "events" list', 422
        )
    extra = sorted(set(doc) - {"events"})
    if extra:
        # A sender speaking another schema must hear it (FAILURE_MODES.md #1), not be ignored.
        raise BadRequest(
            "unknown_fields", f'unknown top-level field(s) {extra}: only "events"', 422
        )
    events: list[Event] = []
    rejected: list[Rejection] = []
    for index, item in enumerate(doc["events"]):
        if not isinstance(item, dict):
            rejected.append(
                Rejection(
                    index,
                    None,
                    f"expected an event object, got {_type_name(item)}",
                    "not_an_object",
                )
            )
            continue
        try:
            events.append(Event.model_validate(item))
        except ValidationError as exc:
            err = exc.errors(include_url=False, include_input=False)[0]
            # "<field>: <problem>"; a check across fields (domain vs entity_id) is the event's.
            path = ".".join(str(p) for p in err["loc"]) or "event"
            reason = f"{path}: {str(err['msg']).removeprefix('Value error, ')}"
            # The event's name only for a rejection, not for every event.
            rejected.append(Rejection(index, describe_raw(item), reason, str(err["type"])))
    return events, rejected


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__
