"""The event every service passes on, built from Home Assistant's ``state_changed`` event.

- `Event`, the pydantic model services exchange over HTTP (``{"events": [...]}``), with the
  JSON codec between services (`dumps_event`, `loads_batch`...);
- `EventKey`, an event's identity, and how logs name it;
- `entity_id_problem`: which entity ids can be stored exactly.

Three things must agree with each other: this model, `pipeline.common.normalise.normalise`
(the websocket's event object to an `Event`, or `BadEvent` naming the offending field) and
`pipeline.common.points.to_line`, the one place that knows the InfluxDB data contract (DESIGN.md
"Data contracts"). Validation means "can be stored exactly": anything `normalise` accepts,
`to_line` can write and InfluxDB 1.x returns unchanged. Line protocol cannot carry every string
in a tag (see `pipeline.common.line_protocol`): such entity ids are refused up front rather
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
from functools import lru_cache
from typing import Annotated, Any, Final, Literal, NamedTuple

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

from pipeline.common.line_protocol import clip, tag_problem

__all__ = [
    "EVENT_TYPE",
    "MEASUREMENT",
    "BadEvent",
    "Event",
    "EventKey",
    "Writer",
    "describe_key",
    "describe_raw",
    "dumps_batch",
    "dumps_event",
    "entity_id_problem",
    "first_error",
    "loads_batch",
    "loads_event",
]

EVENT_TYPE: Final = "state_changed"
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

_WEATHER_NAME = re.compile(r"[A-Za-z0-9_]+")


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
    return f"{clip(entity_id)}@?"


class BadEvent(ValueError):
    """The input is not a usable state_changed event; the message names the field and why."""



@lru_cache(maxsize=65536)  # an entity's id is checked with each of its events: once is enough
def entity_id_problem(entity_id: str) -> str | None:
    """Why ``entity_id`` cannot be stored exactly, or None when it can."""
    if not entity_id:
        return "empty"
    if len(entity_id) > MAX_ENTITY_ID_LENGTH:
        return f"longer than {MAX_ENTITY_ID_LENGTH} characters ({len(entity_id)})"
    domain, dot, object_id = entity_id.partition(".")
    if not dot or not domain or not object_id:
        return f"{clip(entity_id)} is not of the form <domain>.<object_id>"
    for name, value in (("entity id", entity_id), ("domain", domain)):
        problem = tag_problem(value)
        if problem:
            return f"{name} {clip(value)} cannot be an InfluxDB tag: {problem}"
    return None


@lru_cache(maxsize=1024)  # a handful of names, with every event: match each once
def _weather_name_ok(name: str) -> bool:
    return _WEATHER_NAME.fullmatch(name) is not None


def _check_weather_value(name: str, value: object) -> float | str:
    if not _weather_name_ok(name):
        raise ValueError(f"weather field name {clip(name)}: only letters, digits and '_'")
    if type(value) is float and math.isfinite(value):  # the common case, decided at once
        return value
    # bool is an int to Python but would be stored as 1.0: refuse it rather than guess.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(
            f"weather.{name}: expected a number or a string, got {type(value).__name__}")
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


def first_error(exc: ValidationError) -> str:
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
        raise BadEvent(f"event.{first_error(exc)}") from None


def dumps_batch(events: Iterable[Event]) -> bytes:
    """The body of ``POST /api/v1/events``: ``{"events": [...]}``."""
    return orjson.dumps({"events": [e.model_dump() for e in events]})


def loads_batch(data: bytes | str) -> list[Event]:
    """Parse a ``POST /api/v1/events`` body; `BadEvent` names e.g. ``events.3.context_id``."""
    try:
        return _BATCH.validate_json(data).events
    except ValidationError as exc:
        raise BadEvent(first_error(exc)) from None
