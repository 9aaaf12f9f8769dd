"""An event's identity, (entity_id, time_fired_ns), from whatever shape a test holds it in.

Tests compare what was fired with what arrived by this key, never by context id: Home
Assistant (and the fake, at its defaults) gives one context to every change one action causes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.common.events import Event, EventKey
from pipeline.common.normalise import parse_time
from simulators.home_assistant.events import StateChange
from simulators.home_assistant.ledger import LedgerEntry


def key_of(obj: Any) -> EventKey:
    """The key of a `StateChange`, an `Event`, an event as JSON (``entity_id`` +
    ``time_fired_ns``), an InfluxDB row (``entity_id`` + ``time`` in ns) or a websocket event
    object (``data.entity_id`` + ``time_fired``)."""
    if isinstance(obj, StateChange | Event | LedgerEntry):
        return EventKey(obj.entity_id, obj.time_fired_ns)
    if isinstance(obj, Mapping):
        if "time_fired_ns" in obj:
            return EventKey(obj["entity_id"], obj["time_fired_ns"])
        if "time" in obj:
            return EventKey(obj["entity_id"], obj["time"])
        if "data" in obj:
            return EventKey(obj["data"]["entity_id"], parse_time(obj["time_fired"]))
    raise TypeError(f"no event key in {type(obj).__name__}: {str(obj)[:80]}")
