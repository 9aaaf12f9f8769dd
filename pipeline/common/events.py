"""The event every service passes on, built from Home Assistant's ``state_changed`` event.

Three things live here because they must agree with each other:

- `Event`, the pydantic model services exchange over HTTP (``{"events": [...]}``);
- `normalise`, which turns the websocket's event object into an `Event` or raises `BadEvent`
  naming the offending field;
- `to_line`, the one place that knows the InfluxDB data contract (DESIGN.md "Data contracts").

Validation here means "can be stored exactly": anything `normalise` accepts, `to_line` can write
and InfluxDB 1.x returns unchanged. Line protocol cannot carry every string in a tag: 1.x has
no escape for a newline; a tag value ending in a backslash escapes the separator after it; and a
backslash right before a space is read differently by 1.x's two scanners (the line splitter
skips backslash *pairs*, the tag parser only looks at the previous byte), which can make the
splitter misread quotes and cut or merge lines. Such entity ids are refused up front rather
than stored altered. Home Assistant's own entity ids (``[a-z0-9_]+.[a-z0-9_]+``) never hit
this; other unusual but storable ids are accepted and flagged ``nonstandard_entity_id``.

State is never converted: ``"on"`` stays ``"on"``, ``"0"`` stays ``"0"``, ``"21.50"`` stays
``"21.50"`` (FAILURE_MODES.md #12).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NamedTuple

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "EVENT_TYPE",
    "MEASUREMENT",
    "BadEvent",
    "Event",
    "EventKey",
    "describe_key",
    "describe_raw",
    "LineProtocolError",
    "Writer",
    "attributes_json",
    "dumps_batch",
    "dumps_event",
    "entity_id_problem",
    "escape_measurement",
    "escape_tag",
    "loads_batch",
    "loads_event",
    "normalise",
    "parse_time",
    "string_field",
    "to_line",
]

EVENT_TYPE = "state_changed"
MEASUREMENT = "home_assistant_events"
Writer = Literal["legacy", "new"]

#: Home Assistant's own limit on entity ids; it also keeps the series key far below
#: InfluxDB's 65,535-byte maximum.
MAX_ENTITY_ID_LENGTH = 255

#: The instants InfluxDB 1.x can store (models.MinNanoTime / MaxNanoTime: 1677-09-21 to
#: 2262-04-11). ISO 8601 reaches years 1 to 9999: a time_fired outside would be refused by
#: InfluxDB after the event was accepted, or would stall the write of its whole batch.
MIN_TIME_NS = -9_223_372_036_854_775_806
MAX_TIME_NS = 9_223_372_036_854_775_806
#: The most one event may carry, so that every batch of events fits the body limits between
#: services (8 MiB by default; forwarders cap a batch at 4 MiB, at least one event): attributes
#: as JSON, and each state string. Home Assistant's own limits are far lower (255 characters
#: of state; its recorder skips attributes over 16 KiB), and its frames stop at 4 MiB.
MAX_ATTRIBUTES_BYTES = 1024 * 1024
MAX_STATE_BYTES = 64 * 1024
#: Line protocol integers (received_at, enriched_at) are signed 64-bit.
_INT64 = {"ge": -(2**63), "le": 2**63 - 1}

#: homeassistant.core.VALID_ENTITY_ID: what Home Assistant itself would produce.
_HA_ENTITY_ID = re.compile(r"(?!.+__)(?!_)[\da-z_]+(?<!_)\.(?!_)[\da-z_]+(?<!_)")
_WEATHER_NAME = re.compile(r"[A-Za-z0-9_]+")
_ISO_FRACTION = re.compile(r"\.(\d+)")


class EventKey(NamedTuple):
    """What identifies an event: its entity and its moment (DESIGN.md "Event identity").

    It is also InfluxDB's point key (tag ``entity_id`` + timestamp), so a redelivered event lands
    on the same point. Home Assistant's context id is NOT an identity: one action gives the same
    context to every state change it causes.
    """

    entity_id: str
    time_fired_ns: int


def describe_key(key: EventKey) -> str:
    """``sensor.x@2026-06-25T21:20:05.162552Z``: how logs and findings name an event."""
    seconds, ns = divmod(key.time_fired_ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{ns:09d}"
    fraction = fraction[:6] if fraction.endswith("000") else fraction
    return f"{key.entity_id}@{stamp}.{fraction}Z"


def describe_raw(item: object) -> str | None:
    """Best effort `describe_key` of an event that may not validate (for a rejection's log)."""
    if not isinstance(item, Mapping):
        return None
    entity_id, time_fired_ns = item.get("entity_id"), item.get("time_fired_ns")
    if not isinstance(entity_id, str):
        return None
    if isinstance(time_fired_ns, int) and not isinstance(time_fired_ns, bool) \
            and MIN_TIME_NS <= time_fired_ns <= MAX_TIME_NS:
        return describe_key(EventKey(entity_id, time_fired_ns))
    return f"{_clip(entity_id)}@?"


class BadEvent(ValueError):
    """The input is not a usable state_changed event; the message names the field and why."""


class LineProtocolError(ValueError):
    """A value cannot be written as InfluxDB line protocol without being altered."""


def entity_id_problem(entity_id: str) -> str | None:
    """Why ``entity_id`` cannot be stored exactly, or None when it can."""
    if not entity_id:
        return "empty"
    if len(entity_id) > MAX_ENTITY_ID_LENGTH:
        return f"longer than {MAX_ENTITY_ID_LENGTH} characters ({len(entity_id)})"
    domain, dot, object_id = entity_id.partition(".")
    if not dot or not domain or not object_id:
        return f"{_clip(entity_id)} is not of the form <domain>.<object_id>"
    for name, value in (("entity id", entity_id), ("domain", domain)):
        problem = _tag_problem(value)
        if problem:
            return f"{name} {_clip(value)} cannot be an InfluxDB tag: {problem}"
    return None


def _tag_problem(value: str) -> str | None:
    if "\n" in value:
        return "contains a newline"
    if value.endswith("\\"):
        # 1.x treats any byte after a backslash as escaped and never unescapes a double
        # backslash in tags, so a final backslash would swallow the ',' or ' ' ending the value.
        return "ends with a backslash"
    if "\\ " in value:
        # Written as backslash + escaped space; the line splitter pairs the two backslashes
        # and sees a bare space: it then counts quotes wrongly (found by the property test).
        return "has a backslash before a space"
    if not _utf8_ok(value):
        return "is not valid UTF-8 (lone surrogate)"
    return None


def _utf8_ok(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _clip(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_weather_value(name: str, value: object) -> float | str:
    if not _WEATHER_NAME.fullmatch(name):
        raise ValueError(f"weather field name {_clip(name)}: only letters, digits and '_'")
    # bool is an int to Python but would be stored as 1.0: refuse it rather than guess.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"weather.{name}: expected a number or a string, got {type(value).__name__}")
    if isinstance(value, str):
        return value
    number = float(value)
    if not math.isfinite(number):
        # InfluxDB has no NaN/inf; leaving the field out is how "unknown" is written.
        raise ValueError(f"weather.{name}: {value!r} is not finite (omit unknown values)")
    return number


class Event(BaseModel):
    """One state change, as every service after ingestion sees it."""

    # extra=forbid: a sender with a different schema fails loudly, naming the field,
    # instead of having its data silently ignored (FAILURE_MODES.md #1 must be visible).
    model_config = ConfigDict(extra="forbid")

    # Home Assistant's context: shared by every change one action causes, so never an identity
    # (see `key`); kept so a finding can name the cause.
    context_id: Annotated[str, Field(min_length=26, max_length=26)]
    event_type: Literal["state_changed"] = EVENT_TYPE
    entity_id: str
    domain: str
    time_fired_ns: Annotated[int, Field(ge=MIN_TIME_NS, le=MAX_TIME_NS)]
    state: str | None  # None: the entity was removed
    old_state: str | None  # None: the entity was added
    attributes: dict[str, Any] = Field(default_factory=dict)
    received_at_ns: Annotated[int, Field(**_INT64)]
    enriched_at_ns: Annotated[int, Field(**_INT64)] | None = None
    weather: dict[str, float | str] | None = None
    weather_enriched: bool = False
    flags: list[str] = Field(default_factory=list)
    # Where the new pipeline stores it: the production database when the new pipeline owns the
    # event, the shadow database when it only mirrors legacy's write for the consistency check.
    target: Literal["production", "shadow"] = "production"

    @property
    def key(self) -> EventKey:
        """The event's identity, (entity_id, time_fired_ns): what dedupes and accounts it."""
        return EventKey(self.entity_id, self.time_fired_ns)

    @field_validator("entity_id")
    @classmethod
    def _storable_entity_id(cls, value: str) -> str:
        problem = entity_id_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("weather", mode="before")
    @classmethod
    def _weather_values(cls, value: object) -> object:
        if isinstance(value, Mapping):
            return {str(k): _check_weather_value(str(k), v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Event:
        if self.domain != self.entity_id.partition(".")[0]:
            raise ValueError(f"domain {self.domain!r} does not match entity_id {self.entity_id!r}")
        if self.state is None and self.old_state is None:
            raise ValueError("state and old_state are both None (neither added nor removed)")
        return self


# --------------------------------------------------------------------------- normalisation


def normalise(ha_event: object, received_at_ns: int) -> Event:
    """Build an `Event` from Home Assistant's event object (the ``event`` of an event frame).

    Raises `BadEvent` whose message starts with the path of the field at fault, e.g.
    ``event.data.entity_id: missing``.
    """
    event = _obj(ha_event, "event")
    event_type = _str(event, "event_type", "event")
    if event_type != EVENT_TYPE:
        raise BadEvent(
            f"event.event_type: unknown event type {_clip(event_type)} (only {EVENT_TYPE!r} is ingested)"
        )
    data = _obj(_get(event, "data", "event"), "event.data")
    entity_id = _str(data, "entity_id", "event.data")
    problem = entity_id_problem(entity_id)
    if problem:
        raise BadEvent(f"event.data.entity_id: {problem}")

    context = _obj(_get(event, "context", "event"), "event.context")
    context_id = _str(context, "id", "event.context")
    if len(context_id) != 26 or not context_id.isascii() or not context_id.isalnum():
        raise BadEvent(f"event.context.id: expected a 26-character ULID, got {_clip(context_id)}")

    time_fired = _str(event, "time_fired", "event")
    time_fired_ns = _parse_time(time_fired, "event.time_fired")
    if not MIN_TIME_NS <= time_fired_ns <= MAX_TIME_NS:
        raise BadEvent(f"event.time_fired: {_clip(time_fired)} is outside the time range "
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
        attributes = _obj(_get(new_state, "attributes", "event.data.new_state"), "event.data.new_state.attributes")
        try:
            # Serialised here once so that storage can never meet attributes it cannot write.
            text = attributes_json(attributes)
        except (TypeError, orjson.JSONEncodeError) as exc:
            raise BadEvent(f"event.data.new_state.attributes: not JSON-serialisable: {exc}") from None
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
        raise BadEvent(f"event: {_first_error(exc)}") from None


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
    if not _utf8_ok(value):
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
        raise BadEvent(f"{where}: not an ISO 8601 timestamp: {_clip(text)}") from None
    if dt.tzinfo is None:
        raise BadEvent(f"{where}: {_clip(text)} has no UTC offset")
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    # fromisoformat keeps microseconds only; digits 7-9 of a finer timestamp are added back.
    fraction = _ISO_FRACTION.search(text)
    if fraction and len(fraction.group(1)) > 6:
        ns += int(fraction.group(1)[6:9].ljust(3, "0"))
    return ns


def _first_error(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    path = ".".join(str(p) for p in err["loc"])
    return f"{path}: {err['msg']}" if path else str(err["msg"])


# --------------------------------------------------------------------------- JSON between services


class _Batch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[Event]


_BATCH = TypeAdapter(_Batch)


def dumps_event(event: Event) -> bytes:
    """One event as JSON bytes (the payload of a durable-queue item)."""
    # Python-mode dump: every field is already a JSON type, and it is faster than mode="json".
    return orjson.dumps(event.model_dump())


def loads_event(data: bytes | str) -> Event:
    """Inverse of `dumps_event`; raises `BadEvent` naming the field at fault."""
    try:
        return Event.model_validate_json(data)
    except ValidationError as exc:
        raise BadEvent(f"event.{_first_error(exc)}") from None


def dumps_batch(events: Iterable[Event]) -> bytes:
    """The body of ``POST /api/v1/events``: ``{"events": [...]}``."""
    return orjson.dumps({"events": [e.model_dump() for e in events]})


def loads_batch(data: bytes | str) -> list[Event]:
    """Parse a ``POST /api/v1/events`` body; `BadEvent` names e.g. ``events.3.context_id``."""
    try:
        return _BATCH.validate_json(data).events
    except ValidationError as exc:
        raise BadEvent(_first_error(exc)) from None


# --------------------------------------------------------------------------- line protocol

# Escapes per InfluxDB 1.x models/points.go: tag keys/values and field keys escape ',', '='
# and ' '; the measurement escapes ',' and ' '; string field values escape '"' and '\'.
# A backslash is NOT unescaped in tags, so it is written as is: the value  a\,b  is written
# a\\,b  which 1.x scans as an escaped comma and unescapes back to  a\,b  (see entity_id_problem).
_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})


def escape_tag(value: str) -> str:
    """A tag key or value (or a field key); raises `LineProtocolError` if it cannot be exact."""
    problem = _tag_problem(value)
    if problem:
        raise LineProtocolError(f"tag/key {_clip(value)} {problem}")
    # Chained replace beats str.translate by ~5x here (translate with a dict is slow, worse on
    # non-ASCII text), and this runs for every tag of every point.
    if "," in value or "=" in value or " " in value:
        value = value.replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")
    return value


def escape_measurement(value: str) -> str:
    problem = _tag_problem(value)
    if problem or not value:
        raise LineProtocolError(f"measurement {_clip(value)} {problem or 'is empty'}")
    return value.translate(_MEASUREMENT_ESCAPES)


def string_field(value: str) -> str:
    """A quoted string field value. Newlines need no escape: 1.x reads them inside quotes."""
    if "\\" in value or '"' in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + value + '"'


def attributes_json(attributes: Mapping[str, Any]) -> str:
    """The ``attributes`` field: compact JSON with sorted keys, so equal dicts give equal strings."""
    return orjson.dumps(attributes, option=orjson.OPT_SORT_KEYS).decode()


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
        for key, value in (("domain", event.domain), ("entity_id", event.entity_id), ("event_type", event.event_type))
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
