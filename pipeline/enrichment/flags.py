"""Validation that flags and never drops, and never rewrites `state` (FAILURE_MODES.md #12).

A state of "unavailable", a sensor with a ``state_class`` reporting text, an attribute that was
a number and is now a string: all real Home Assistant behaviour worth knowing about downstream,
none a reason to lose the event or to "fix" it. Each finding is a string in ``Event.flags``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from pipeline.common.events import Event

__all__ = [
    "ATTRIBUTES_TYPE_CHANGED",
    "NON_NUMERIC_STATE_FOR_MEASUREMENT",
    "STATE_UNAVAILABLE",
    "STATE_UNKNOWN",
    "AttributeTypeTracker",
    "Flagger",
    "json_type",
]

STATE_UNAVAILABLE = "state_unavailable"
STATE_UNKNOWN = "state_unknown"
ATTRIBUTES_TYPE_CHANGED = "attributes_type_changed"
NON_NUMERIC_STATE_FOR_MEASUREMENT = "non_numeric_state_for_measurement"


def json_type(value: Any) -> str:
    """The JSON type of a decoded value: int and float are both "number", as JSON has no int."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    return "object"


class AttributeTypeTracker:
    """The last JSON type seen per (entity, attribute), for at most ``max_entities`` entities.

    Least recently updated entities are forgotten first: a fleet larger than the bound only
    means a type change on a long-quiet entity may go unflagged, never unbounded memory.
    """

    def __init__(self, max_entities: int) -> None:
        if max_entities < 1:
            raise ValueError("max_entities must be >= 1")
        self.max_entities = max_entities
        self._types: OrderedDict[str, dict[str, str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._types)

    def observe(self, entity_id: str, attributes: Mapping[str, Any]) -> list[str]:
        """Record these attributes' types; return the names whose type changed, sorted."""
        known = self._types.get(entity_id)
        if known is None:
            known = {}
            self._types[entity_id] = known
            if len(self._types) > self.max_entities:
                self._types.popitem(last=False)
        else:
            self._types.move_to_end(entity_id)
        changed = []
        for name, value in attributes.items():
            kind = json_type(value)
            before = known.get(name)
            if before is not None and before != kind:
                changed.append(name)
            known[name] = kind
        return sorted(changed)

    def forget(self, entity_id: str) -> None:
        """The entity was removed: a new one of the same id starts with a clean slate."""
        self._types.pop(entity_id, None)


def _is_number(state: str) -> bool:
    try:
        return math.isfinite(float(state))
    except ValueError:
        return False


class Flagger:
    """Computes an event's flags; stateful only through the attribute type tracker."""

    def __init__(self, tracker: AttributeTypeTracker) -> None:
        self.tracker = tracker

    def flags_for(self, event: Event) -> list[str]:
        """New flags for ``event`` (those it does not carry yet), in a stable order."""
        found: list[str] = []
        state = event.state
        if state is None:  # removed: nothing to check, and its attribute history ends here
            self.tracker.forget(event.entity_id)
            return found
        if state == "unavailable":
            found.append(STATE_UNAVAILABLE)
        elif state == "unknown":
            found.append(STATE_UNKNOWN)
        elif (
            event.domain == "sensor"
            and event.attributes.get("state_class")
            and not _is_number(state)
        ):
            # "unavailable"/"unknown" are excluded above: Home Assistant allows them for any
            # sensor, and they already carry their own flag.
            found.append(NON_NUMERIC_STATE_FOR_MEASUREMENT)
        if self.tracker.observe(event.entity_id, event.attributes):
            found.append(ATTRIBUTES_TYPE_CHANGED)
        return [f for f in found if f not in event.flags]
