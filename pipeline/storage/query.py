"""Reading events back: query parameters -> InfluxQL -> JSON.

Every value from the request reaches InfluxQL only as a string literal (escaped per InfluxQL's
scanner: backslash, both quotes and newline) or as an integer we produced ourselves; so an
entity id like ``x' OR 1=1 --`` is just an entity id that matches nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson

from pipeline.common.bad_input import BadRequest
from pipeline.common.events import MEASUREMENT, BadEvent
from pipeline.common.influx_v1 import quote_ident
from pipeline.common.normalise import parse_time
from pipeline.storage.intake import TARGETS, Target

__all__ = [
    "QUERY_PARAMETERS",
    "EventQuery",
    "count_statement",
    "event_from_row",
    "iso_from_ns",
    "parse_event_query",
    "result_rows",
    "select_statement",
    "string_literal",
]

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
# InfluxDB 1.x's own time bounds (models.MinNanoTime / MaxNanoTime).
MIN_TIME_NS = -9_223_372_036_854_775_806
MAX_TIME_NS = 9_223_372_036_854_775_806

Order = Literal["asc", "desc"]
ORDERS: tuple[Order, ...] = ("asc", "desc")

_INTEGER = re.compile(r"[+-]?\d+")
_TIME_EXPECTED = (
    "expected an ISO 8601 timestamp with a UTC offset (e.g. 2026-06-25T21:20:05.162552+00:00) "
    "or integer nanoseconds since the Unix epoch"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LITERAL_ESCAPES = str.maketrans({"\\": "\\\\", "'": "\\'", "\n": "\\n"})


def _or_empty(*schemas: dict[str, Any]) -> dict[str, Any]:
    # An empty value means "not given" (see parse_event_query).
    return {"anyOf": [*schemas, {"type": "string", "maxLength": 0}]}


_TIME_SCHEMA = _or_empty({"type": "integer", "minimum": MIN_TIME_NS, "maximum": MAX_TIME_NS},
                         {"type": "string", "format": "date-time"})

#: The query parameters of GET /api/v1/events (all six) and /count (the first four), for the
#: OpenAPI spec: the handlers read them by hand, to name the parameter at fault in a 400.
#: Any other parameter is refused: a mistyped filter must not silently match everything.
QUERY_PARAMETERS: list[dict[str, Any]] = [
    {"name": "db", "in": "query", "required": False,
     "schema": _or_empty({"type": "string", "enum": list(TARGETS), "default": "production"})},
    {"name": "entity_id", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "only this entity's events"},
    {"name": "since", "in": "query", "required": False, "schema": _TIME_SCHEMA,
     "description": f"inclusive; {_TIME_EXPECTED}"},
    {"name": "until", "in": "query", "required": False, "schema": _TIME_SCHEMA,
     "description": "exclusive; after since; same forms as since"},
    {"name": "limit", "in": "query", "required": False,
     "schema": _or_empty({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                          "default": DEFAULT_LIMIT})},
    {"name": "order", "in": "query", "required": False,
     "schema": _or_empty({"type": "string", "enum": list(ORDERS), "default": "desc"})},
]


@dataclass(frozen=True, slots=True)
class EventQuery:
    db: Target = "production"
    entity_id: str | None = None
    since_ns: int | None = None  # inclusive
    until_ns: int | None = None  # exclusive
    limit: int = DEFAULT_LIMIT
    order: Order = "desc"


def parse_event_query(params: Iterable[tuple[str, str]], *, counting: bool = False) -> EventQuery:
    """Validate query parameters; `BadRequest` (400) names the parameter and what it expects."""
    allowed = {"db", "entity_id", "since", "until"} | (set() if counting else {"limit", "order"})
    values: dict[str, str] = {}
    for name, value in params:
        if name not in allowed:
            raise _bad(name, f"unknown parameter; expected one of {', '.join(sorted(allowed))}")
        if name in values:
            raise _bad(name, "given more than once")
        if value != "":  # ?entity_id=&since= means "not given"
            values[name] = value
    db = values.get("db", "production")
    if db not in TARGETS:
        raise _bad("db", f"expected 'production' or 'shadow', got {_clip(db)}")
    order = values.get("order", "desc")
    if order not in ORDERS:
        raise _bad("order", f"expected 'asc' or 'desc', got {_clip(order)}")
    entity_id = values.get("entity_id")
    since = _time_param("since", values.get("since"))
    until = _time_param("until", values.get("until"))
    if since is not None and until is not None and since >= until:
        raise _bad("until", f"must be after since ({until} <= {since})")
    return EventQuery(
        db=db,
        entity_id=entity_id,
        since_ns=since,
        until_ns=until,
        limit=_limit(values.get("limit")),
        order=order,
    )


def _time_param(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    if _INTEGER.fullmatch(text):
        ns = int(text)
    else:
        try:
            ns = parse_time(text, name)
        except BadEvent:
            raise _bad(name, f"{_TIME_EXPECTED}, got {_clip(value)}") from None
    if not MIN_TIME_NS <= ns <= MAX_TIME_NS:
        raise _bad(name, f"{ns} is outside InfluxDB's time range")
    return ns


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if not _INTEGER.fullmatch(value.strip()) or not 1 <= int(value) <= MAX_LIMIT:
        raise _bad("limit", f"expected an integer from 1 to {MAX_LIMIT}, got {_clip(value)}")
    return int(value)


def _bad(name: str, problem: str) -> BadRequest:
    return BadRequest("bad_parameter", f"query parameter {name!r}: {problem}")


def _clip(value: str, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- InfluxQL


def string_literal(value: str) -> str:
    """An InfluxQL string literal: single quotes, with the escapes InfluxQL's scanner knows."""
    return "'" + value.translate(_LITERAL_ESCAPES) + "'"


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


def _where(query: EventQuery) -> str:
    conditions = []
    if query.entity_id is not None and _has_control(query.entity_id):
        # No entity id holds a control character, and InfluxQL's scanner stops at NUL: such a
        # filter matches nothing, said as an empty time range rather than sent to InfluxDB.
        conditions.append("time >= 0 AND time < 0")
    elif query.entity_id is not None:
        conditions.append(f"{quote_ident('entity_id')} = {string_literal(query.entity_id)}")
    if query.since_ns is not None:
        conditions.append(f"time >= {query.since_ns}")
    if query.until_ns is not None:
        conditions.append(f"time < {query.until_ns}")
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


def select_statement(query: EventQuery) -> str:
    order = "DESC" if query.order == "desc" else "ASC"
    return (
        f"SELECT * FROM {quote_ident(MEASUREMENT)}{_where(query)} "
        f"ORDER BY time {order} LIMIT {query.limit}"
    )


def count_statement(query: EventQuery) -> str:
    # context_id is written on every point, so counting it counts points.
    return (f"SELECT count({quote_ident('context_id')}) "
            f"FROM {quote_ident(MEASUREMENT)}{_where(query)}")


def result_rows(results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The rows of every series of an InfluxDB ``results`` list, as dicts."""
    out: list[dict[str, Any]] = []
    for result in results:
        for series in result.get("series", ()):
            columns = series["columns"]
            out.extend(dict(zip(columns, values, strict=True)) for values in series["values"])
    return out


# --------------------------------------------------------------------------- back to JSON

_WEATHER_PREFIX = "weather_"


def iso_from_ns(ns: int) -> str:
    """``2026-06-25T21:20:05.162552+00:00``: UTC, microseconds (exact value: time_fired_ns)."""
    seconds, rest = divmod(ns, 1_000_000_000)
    return (_EPOCH + timedelta(seconds=seconds, microseconds=rest // 1000)).isoformat(
        timespec="microseconds"
    )


def event_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """One point (queried with ``epoch=ns``) as the event JSON storage answers with.

    Values are returned as stored: a removed entity's ``state`` is ``""`` because that is
    how the data contract writes it. ``attributes`` is parsed back to an object; a value that
    is not JSON (written by something else) is returned as the raw string rather than hidden.
    """
    time_fired_ns = int(row["time"])
    weather = {
        key[len(_WEATHER_PREFIX) :]: value
        for key, value in row.items()
        if key.startswith(_WEATHER_PREFIX) and key != "weather_enriched" and value is not None
    }
    return {
        "context_id": row.get("context_id"),
        "event_type": row.get("event_type"),
        "entity_id": row.get("entity_id"),
        "domain": row.get("domain"),
        "state": row.get("state"),
        "old_state": row.get("old_state"),
        "attributes": _attributes(row.get("attributes")),
        "time_fired": iso_from_ns(time_fired_ns),
        "time_fired_ns": time_fired_ns,
        "received_at_ns": row.get("received_at"),
        "enriched_at_ns": row.get("enriched_at"),
        "stored_at_ns": row.get("stored_at"),
        "weather": weather or None,
        "weather_enriched": row.get("weather_enriched"),
        "writer": row.get("writer"),
    }


def _attributes(raw: object) -> object:
    if not isinstance(raw, str):
        return raw
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw
