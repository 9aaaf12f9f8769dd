"""Home Assistant's ``state_changed`` event object -> `Event`, or `BadEvent` naming the field.

Checks what the model cannot see: the shape of Home Assistant's object, its ISO 8601 times
(exact to the nanosecond), and the sizes one event may carry. See `pipeline.common.events`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from pipeline.common.events import (
    EVENT_TYPE,
    MAX_ATTRIBUTES_BYTES,
    MAX_STATE_BYTES,
    MAX_TIME_NS,
    MIN_TIME_NS,
    BadEvent,
    Event,
    entity_id_problem,
    first_error,
)
from pipeline.common.line_protocol import attributes_json, clip, utf8_ok

__all__ = ["normalise", "parse_time"]

#: homeassistant.core.VALID_ENTITY_ID: what Home Assistant itself would produce.
_HA_ENTITY_ID = re.compile(r"(?!.+__)(?!_)[\da-z_]+(?<!_)\.(?!_)[\da-z_]+(?<!_)")
_ISO_FRACTION = re.compile(r"\.(\d+)")


def normalise(ha_event: object, received_at_ns: int) -> Event:
    """Build an `Event` from Home Assistant's event object (the ``event`` of an event frame).

    Raises `BadEvent` whose message starts with the path of the field at fault, e.g.
    ``event.data.entity_id: missing``.
    """
    event = _obj(ha_event, "event")
    event_type = _str(event, "event_type", "event")
    if event_type != EVENT_TYPE:
        raise BadEvent(
            f"event.event_type: unknown event type {clip(event_type)} "
            f"(only {EVENT_TYPE!r} is ingested)"
        )
    data = _obj(_get(event, "data", "event"), "event.data")
    entity_id = _str(data, "entity_id", "event.data")
    problem = entity_id_problem(entity_id)
    if problem:
        raise BadEvent(f"event.data.entity_id: {problem}")

    context = _obj(_get(event, "context", "event"), "event.context")
    context_id = _str(context, "id", "event.context")
    if len(context_id) != 26 or not context_id.isascii() or not context_id.isalnum():
        raise BadEvent(f"event.context.id: expected a 26-character ULID, got {clip(context_id)}")

    time_fired = _str(event, "time_fired", "event")
    time_fired_ns = _parse_time(time_fired, "event.time_fired")
    if not MIN_TIME_NS <= time_fired_ns <= MAX_TIME_NS:
        raise BadEvent(f"event.time_fired: {clip(time_fired)} is outside the time range "
                       "InfluxDB can store (1677-09-21 to 2262-04-11)")

    new_state = _state_obj(data, "new_state")
    old_state = _state_obj(data, "old_state")
    if new_state is None and old_state is None:
        raise BadEvent("event.data: old_state and new_state are both null")

    flags: list[str] = []
    if not _HA_ENTITY_ID.fullmatch(entity_id):
        flags.append("nonstandard_entity_id")

    state = attributes = None
    if new_state is not None:
        state = _state_str(new_state, "event.data.new_state")
        attributes = _obj(_get(new_state, "attributes", "event.data.new_state"),
                          "event.data.new_state.attributes")
        try:
            # Serialised here once so that storage can never meet attributes it cannot write.
            text = attributes_json(attributes)
        except (TypeError, orjson.JSONEncodeError) as exc:
            raise BadEvent(
                f"event.data.new_state.attributes: not JSON-serialisable: {exc}") from None
        if len(text) > MAX_ATTRIBUTES_BYTES // 4 and len(text.encode()) > MAX_ATTRIBUTES_BYTES:
            raise BadEvent(f"event.data.new_state.attributes: {len(text.encode()):,} bytes as "
                           f"JSON, over the {MAX_ATTRIBUTES_BYTES:,} bytes one event may carry")
        if new_state.get("entity_id", entity_id) != entity_id:
            flags.append("new_state_entity_id_mismatch")
    old = None if old_state is None else _state_str(old_state, "event.data.old_state")

    try:
        return Event(
            context_id=context_id,
            event_type=EVENT_TYPE,
            entity_id=entity_id,
            domain=entity_id.partition(".")[0],
            time_fired_ns=time_fired_ns,
            state=state,
            old_state=old,
            attributes=attributes or {},
            received_at_ns=received_at_ns,
            flags=flags,
        )
    except ValidationError as exc:  # the checks above should make this unreachable
        raise BadEvent(f"event: {first_error(exc)}") from None


def _get(obj: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise BadEvent(f"{where}.{key}: missing")
    return obj[key]


def _obj(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadEvent(f"{where}: expected an object, got {_type_name(value)}")
    if not all(isinstance(k, str) for k in value):
        raise BadEvent(f"{where}: keys must be strings")
    return value


def _str(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = _get(obj, key, where)
    if not isinstance(value, str):
        raise BadEvent(f"{where}.{key}: expected a string, got {_type_name(value)}")
    return value


def _state_obj(data: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = _get(data, key, "event.data")
    return None if value is None else _obj(value, f"event.data.{key}")


def _state_str(state_obj: Mapping[str, Any], where: str) -> str:
    # Home Assistant states are always strings; a number here means the sender already
    # converted it, and converting back could never restore "21.50" or "0" faithfully.
    value = _str(state_obj, "state", where)
    if not utf8_ok(value):
        raise BadEvent(f"{where}.state: not valid UTF-8 (lone surrogate)")
    if len(value) > MAX_STATE_BYTES // 4 and len(value.encode()) > MAX_STATE_BYTES:
        raise BadEvent(f"{where}.state: {len(value.encode()):,} bytes, over the "
                       f"{MAX_STATE_BYTES:,} bytes a state may have")
    return value


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def parse_time(text: str, where: str = "time") -> int:
    """ISO 8601 with an offset -> Unix ns, exactly (integer arithmetic, no float seconds).

    Raises `BadEvent` starting with ``where``."""
    return _parse_time(text, where)


def _parse_time(text: str, where: str) -> int:
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise BadEvent(f"{where}: not an ISO 8601 timestamp: {clip(text)}") from None
    if dt.tzinfo is None:
        raise BadEvent(f"{where}: {clip(text)} has no UTC offset")
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    # fromisoformat keeps microseconds only; digits 7-9 of a finer timestamp are added back.
    fraction = _ISO_FRACTION.search(text)
    if fraction and len(fraction.group(1)) > 6:
        ns += int(fraction.group(1)[6:9].ljust(3, "0"))
    return ns
