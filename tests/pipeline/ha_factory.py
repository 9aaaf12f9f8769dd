"""Home Assistant state_changed events as the websocket delivers them, built with the fake
Home Assistant's own wire format (so the normaliser is tested against what it will receive)."""

from __future__ import annotations

import random
from typing import Any

from simulators.home_assistant.events import StateChange, event_object
from simulators.home_assistant.timefmt import iso_from_ns, ulid

#: 2026-06-25T21:20:05.162552+00:00
T0_NS = 1_782_422_405_162_552_000


def state_obj(
    entity_id: str, state: str, attributes: dict[str, Any] | None, ts_ns: int, context_id: str
) -> dict[str, Any]:
    iso = iso_from_ns(ts_ns)
    return {
        "entity_id": entity_id,
        "state": state,
        "attributes": {} if attributes is None else attributes,
        "last_changed": iso,
        "last_reported": iso,
        "last_updated": iso,
        "context": {"id": context_id, "parent_id": None, "user_id": None},
    }


def ha_event(
    entity_id: str = "sensor.living_room_temperature",
    old: str | None = "21.40",
    new: str | None = "21.50",
    *,
    attributes: dict[str, Any] | None = None,
    time_fired_ns: int = T0_NS,
    rng: random.Random | None = None,
) -> dict[str, Any]:
    """A state_changed event object; ``old=None`` is an addition, ``new=None`` a removal."""
    rng = rng or random.Random(time_fired_ns)
    context_id = ulid(time_fired_ns, rng)
    if attributes is None and new is not None:
        attributes = {
            "unit_of_measurement": "°C",
            "device_class": "temperature",
            "friendly_name": "Living room",
        }
    change = StateChange(
        entity_id=entity_id,
        old_state=None if old is None else state_obj(
            entity_id, old, {}, time_fired_ns - 60_000_000_000,
            ulid(time_fired_ns - 60_000_000_000, rng),
        ),
        new_state=None if new is None else state_obj(
            entity_id, new, attributes, time_fired_ns, context_id
        ),
        context_id=context_id,
        time_fired_ns=time_fired_ns,
    )
    return event_object(change)
