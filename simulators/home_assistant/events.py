"""A state change as the fake Home Assistant fires it, and its wire shape.

Every source of events (the generated fleet, a replayed recording) produces ``StateChange``;
the server turns it into the ``event`` object of an event frame with :func:`event_object`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .timefmt import iso_from_ns


@dataclass(slots=True)
class StateChange:
    """One ``state_changed`` event. ``old_state`` is None for an added entity, ``new_state``
    None for a removed one. State objects are plain dicts in Home Assistant's key order."""

    entity_id: str
    old_state: dict[str, Any] | None
    new_state: dict[str, Any] | None
    context_id: str  # the event's context id: the event_id everywhere downstream
    time_fired_ns: int

    @property
    def state(self) -> str | None:
        """The new state string (None for a removal), as the ledger records it."""
        return None if self.new_state is None else self.new_state["state"]


def context(context_id: str) -> dict[str, Any]:
    return {"id": context_id, "parent_id": None, "user_id": None}


def event_object(change: StateChange) -> dict[str, Any]:
    """The ``event`` of an event frame, keys in Home Assistant's order."""
    return {
        "event_type": "state_changed",
        "data": {
            "entity_id": change.entity_id,
            "old_state": change.old_state,
            "new_state": change.new_state,
        },
        "origin": "LOCAL",
        "time_fired": iso_from_ns(change.time_fired_ns),
        # The event's context is the new state's context (a fresh one for a removal).
        "context": change.new_state["context"] if change.new_state else context(change.context_id),
    }
