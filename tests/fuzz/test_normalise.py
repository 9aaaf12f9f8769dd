"""Normalisation and line protocol under hypothesis: arbitrary input, exact output.

- `normalise` is total: for any JSON-ish value, and for real events with any one part broken,
  it returns an `Event` or raises `BadEvent` whose message starts with the path of the field at
  fault; never another exception (the ingestion task and the legacy writer only catch BadEvent).
- What it accepts is storable exactly: `to_line` writes a line that InfluxDB 1.x's grammar reads
  back to the same tags and fields (checked here by an independent reading of that grammar, for
  every example) and that a real influxd accepts and returns unchanged (for a sample).
- The same holds for the `Event` model services validate each other's events with: an event
  storage accepts with a 200 must be one InfluxDB can store.
- States are never converted: "on", "0", "21.50", non-ASCII and whitespace come out as sent.
"""

from __future__ import annotations

import copy
import itertools
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from pipeline.common.events import (
    MAX_ATTRIBUTES_BYTES,
    MAX_STATE_BYTES,
    MEASUREMENT,
    BadEvent,
    Event,
    dumps_event,
    loads_event,
)
from pipeline.common.line_protocol import attributes_json
from pipeline.common.normalise import normalise
from pipeline.common.points import to_line
from tests.fixtures.influx import InfluxServer
from tests.pipeline.ha_factory import T0_NS, ha_event

RECEIVED = 1_782_422_405_200_000_000
#: InfluxDB 1.x's time range (models.MinNanoTime / MaxNanoTime) and its integer fields' range.
MIN_TIME_NS, MAX_TIME_NS = -9_223_372_036_854_775_806, 9_223_372_036_854_775_806
INT64 = (-(2**63), 2**63 - 1)

# -- strategies ------------------------------------------------------------------------------------

_TRICKY = st.sampled_from([*' ,="\\\n\r\t\'.{}[]:\x00\x7f', "\\ ", "\\,", "\\=", '\\"', "😀",
                           "温度", "\u200b", "\ufeff", "\ud800", "é", "e\u0301", "ß", "İ"])
TEXT = st.lists(st.one_of(_TRICKY, st.characters()), max_size=10).map("".join)
#: What orjson.loads can produce from a websocket frame: any JSON value (ints beyond 64 bits
#: included: orjson turns those into floats, Python callers can still hand big ints over).
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=10,
)
#: What a websocket frame can hold: JSON has no NaN or infinity (orjson refuses them).
WIRE_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=10,
)
STATES = st.one_of(st.sampled_from(["on", "off", "0", "1", "21.50", "-0", "1e3", "unavailable",
                                    "unknown", "", " ", "on ", "ON", "true", "null", "NaN"]),
                   TEXT)
#: Entity ids as Home Assistant makes them, and as a misbehaving integration might.
ENTITY_IDS = st.one_of(
    st.from_regex(r"[a-z_]{1,12}\.[a-z0-9_]{1,20}", fullmatch=True),
    st.builds(lambda d, o: f"{d}.{o}", TEXT.filter(lambda t: "." not in t), TEXT),
)
#: Every offset Python's ISO parser takes, every instant it can represent.
OFFSETS = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
TIMES = st.datetimes(timezones=OFFSETS).map(lambda dt: dt.isoformat(timespec="microseconds"))
#: Times InfluxDB can hold (a day inside its range each side, whatever the offset).
STORABLE_TIMES = st.datetimes(datetime(1677, 9, 23), datetime(2262, 4, 10), timezones=OFFSETS
                              ).map(lambda dt: dt.isoformat(timespec="microseconds"))


def _valid_event(entity_id: str, old: str | None, new: str | None, attributes: Any,
                 time_fired: str | None = None, n: int = 0) -> dict[str, Any]:
    event = ha_event(entity_id, old, new, attributes=attributes, time_fired_ns=T0_NS + n * 1000)
    if time_fired is not None:
        event["time_fired"] = time_fired
    return event


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON object, for breaking one part of a real event."""
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _paths(child, (*prefix, index))
    return out


@st.composite
def broken_events(draw: st.DrawFn) -> Any:
    """A real state_changed event with one part deleted or replaced by any JSON value."""
    event = _valid_event(draw(ENTITY_IDS), draw(st.none() | STATES), draw(st.none() | STATES),
                         draw(st.dictionaries(TEXT, JSON, max_size=3)))
    path = draw(st.sampled_from(_paths(event)))
    parent = event
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(JSON)
    return event


# -- normalise is total ----------------------------------------------------------------------------

_FIELD_PATH = re.compile(r"event(\.[A-Za-z_]+)*: \S")


def _normalise_or_bad(raw: Any) -> Event | None:
    """The only two outcomes allowed; a BadEvent must start with the field's path."""
    snapshot = copy.deepcopy(raw)
    try:
        event = normalise(raw, RECEIVED)
    except BadEvent as exc:
        assert _FIELD_PATH.match(str(exc)), f"message does not name the field: {exc}"
        return None
    finally:
        assert raw == snapshot or raw != raw, "normalise changed its input"  # NaN != NaN
    assert isinstance(event, Event)
    return event


@settings(max_examples=200, deadline=None)
@given(JSON)
@example({"event_type": "state_changed", "data": None})
@example({"event_type": "state_changed", "data": {"entity_id": 1}})
@example({"event_type": "state_changed", "data": {"entity_id": "a.b"}, "context": {"id": "x"}})
def test_anything_is_an_event_or_a_bad_event_naming_the_field(raw: Any) -> None:
    _normalise_or_bad(raw)


@settings(max_examples=250, deadline=None)
@given(broken_events())
def test_a_real_event_with_any_part_broken_is_never_a_crash(raw: Any) -> None:
    event = _normalise_or_bad(raw)
    if event is not None:
        _assert_storable(event)


@settings(max_examples=200, deadline=None)
@given(TIMES)
@example("0001-01-01T00:00:00.000000+00:00")
@example("9999-12-31T23:59:59.999999+00:00")
@example("1677-09-21T00:12:43.145225+00:00")  # just before InfluxDB's first instant
@example("2262-04-11T23:47:16.854775+00:00")  # just after its last
def test_time_fired_is_exact_or_refused_by_name(time_fired: str) -> None:
    event = _normalise_or_bad(_valid_event("sensor.t", "1", "2", {}, time_fired))
    expected = _exact_ns(time_fired)
    if event is None:
        assert not MIN_TIME_NS <= expected <= MAX_TIME_NS, "refused a time InfluxDB can store"
        return
    assert event.time_fired_ns == expected
    _assert_storable(event)


def _exact_ns(iso: str) -> int:
    dt = datetime.fromisoformat(iso)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000


# -- what is accepted is stored exactly ------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(entity_id=ENTITY_IDS, old=st.none() | STATES, new=STATES,
       attributes=st.dictionaries(TEXT, WIRE_JSON, max_size=4))
@example(entity_id="sensor.x", old="0", new="on", attributes={})
@example(entity_id="sensor.ünï", old="温度 😀", new="ü\n\"q\" \\", attributes={"a": 2**63})
@example(entity_id="sensor.x", old=None, new="1", attributes={"big": 2**64})
def test_states_are_never_altered_and_lines_read_back_identical(
        entity_id: str, old: str | None, new: str, attributes: dict[str, Any]) -> None:
    event = _normalise_or_bad(_valid_event(entity_id, old, new, attributes))
    if event is None:
        return
    assert (event.state, event.old_state) == (new, old)  # "0" stays "0", "on" stays "on"
    assert event.attributes == attributes
    assert loads_event(dumps_event(event)) == event  # JSON between services
    point = _assert_storable(event)
    assert (point.fields["state"], point.fields["old_state"]) == (new, old or "")


@settings(max_examples=200, deadline=None)
@given(st.builds(
    dict,
    context_id=st.text(min_size=26, max_size=26),
    entity_id=ENTITY_IDS,
    time_fired_ns=st.integers(),
    state=st.none() | STATES,
    old_state=st.none() | STATES,
    attributes=st.dictionaries(TEXT, WIRE_JSON, max_size=3),
    received_at_ns=st.integers(),
    enriched_at_ns=st.none() | st.integers(),
    weather=st.none() | st.dictionaries(st.from_regex(r"[a-z_]{1,10}", fullmatch=True),
                                        st.floats() | TEXT, max_size=2),
))
@example({"context_id": "0" * 26, "entity_id": "sensor.x", "time_fired_ns": 2**63,
          "state": "on", "old_state": None, "attributes": {}, "received_at_ns": 0})
@example({"context_id": "0" * 26, "entity_id": "sensor.x", "time_fired_ns": 0,
          "state": "on", "old_state": None, "attributes": {}, "received_at_ns": 2**64})
def test_an_event_services_accept_is_one_influxdb_stores(doc: dict[str, Any]) -> None:
    """What `Event` validates (enrichment and storage answer 200 for it) `to_line` writes.
    Through JSON, as services receive it: a body that is not UTF-8 never reaches the model."""
    doc["domain"] = doc["entity_id"].partition(".")[0]
    try:
        wire = orjson.loads(orjson.dumps(doc))
    except (TypeError, orjson.JSONEncodeError):
        assume(False)  # lone surrogates, integers beyond 64 bits: no sender can put them in JSON
    try:
        event = Event.model_validate(wire)
    except ValidationError:
        return
    _assert_storable(event)


# -- an independent reading of InfluxDB 1.x's line protocol ----------------------------------------


class Point:
    def __init__(self, measurement: str, tags: dict[str, str], fields: dict[str, Any], time: int):
        self.measurement, self.tags, self.fields, self.time = measurement, tags, fields, time


def _assert_storable(event: Event) -> Point:
    """to_line writes it, and 1.x's grammar reads back the same values, in 1.x's ranges."""
    line = to_line(event, writer="new", stored_at_ns=RECEIVED + 1)
    line.encode()  # InfluxDB reads UTF-8
    point = parse_line(line)
    assert point.measurement == MEASUREMENT
    tags = (("domain", event.domain), ("entity_id", event.entity_id),
            ("event_type", "state_changed"))
    assert point.tags == {k: v for k, v in tags if v}
    assert point.fields["context_id"] == event.context_id
    assert point.fields["state"] == (event.state or "")
    assert point.fields["old_state"] == (event.old_state or "")
    assert point.fields["attributes"] == attributes_json(event.attributes)
    assert orjson.loads(point.fields["attributes"]) == orjson.loads(orjson.dumps(event.attributes))
    assert point.fields["received_at"] == event.received_at_ns
    if event.enriched_at_ns is not None:
        assert point.fields["enriched_at"] == event.enriched_at_ns
    for name, value in (event.weather or {}).items():
        assert point.fields[f"weather_{name}"] == value
    assert point.fields["writer"] == "new"
    assert MIN_TIME_NS <= point.time <= MAX_TIME_NS, f"time {point.time} outside InfluxDB's range"
    for name, value in point.fields.items():
        if type(value) is int:
            assert INT64[0] <= value <= INT64[1], f"{name}={value} is not a 64-bit integer"
    assert point.time == event.time_fired_ns
    return point


def _split_key(text: str, sep: str, limit: int = -1) -> list[str]:
    """Split the series key as 1.x's key scanner does: a separator is escaped when the byte
    before it is a backslash (whatever precedes that backslash)."""
    parts, start = [], 0
    for i, c in enumerate(text):
        if c == sep and (i == 0 or text[i - 1] != "\\") and len(parts) != limit:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _split_fields(text: str) -> tuple[list[str], str]:
    """The field section as 1.x scans it: inside a quoted string a backslash escapes the next
    byte; outside, ',' separates fields and ' ' ends them. Returns (fields, rest of line)."""
    fields, start, quoted, i = [], 0, False, 0
    while i < len(text):
        c = text[i]
        if quoted and c == "\\":
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif not quoted and c in ", ":
            fields.append(text[start:i])
            start = i + 1
            if c == " ":
                return fields, text[start:]
        i += 1
    raise AssertionError(f"fields never end (unbalanced quote?): {text!r:.200}")


def _unescape_key(text: str) -> str:
    # 1.x unescapes only "\," "\=" "\ " in measurement, tag keys/values and field keys.
    return re.sub(r"\\([,= ])", r"\1", text)


def _field_value(raw: str) -> Any:
    if raw.startswith('"'):
        assert raw.endswith('"') and len(raw) >= 2, raw
        return re.sub(r'\\(["\\])', r"\1", raw[1:-1])
    if raw in ("true", "false"):
        return raw == "true"
    if raw.endswith("i"):
        return int(raw[:-1])
    value = float(raw)
    assert value == value and abs(value) != float("inf"), f"InfluxDB has no {raw}"
    return value


def parse_line(line: str) -> Point:
    key, rest = _split_key(line, " ", limit=1)
    field_texts, time_text = _split_fields(rest)
    assert time_text.lstrip("-").isdigit(), f"not measurement+tags, fields, time: {line!r:.300}"
    series = _split_key(key, ",")
    tags = {}
    for pair in series[1:]:
        k, v = _split_key(pair, "=", limit=1)
        tags[_unescape_key(k)] = _unescape_key(v)
    fields = {}
    for pair in field_texts:
        k, v = _split_key(pair, "=", limit=1)
        fields[_unescape_key(k)] = _field_value(v)
    return Point(_unescape_key(series[0]), tags, fields, int(time_text))


# -- a sample through the real influxd -------------------------------------------------------------

_SEQ = itertools.count(1)


@pytest.mark.slow
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(st.tuples(ENTITY_IDS, st.none() | STATES, STATES,
                                st.dictionaries(TEXT, WIRE_JSON, max_size=3), STORABLE_TIMES),
                      min_size=1, max_size=8))
def test_a_sample_round_trips_through_the_real_influxd(
        influxd: InfluxServer, influx_db: str,
        batch: list[tuple[str, str | None, str, dict[str, Any], str]]) -> None:
    events = []
    for entity_id, old, new, attributes, time_fired in batch:
        raw = _valid_event(entity_id, old, new, attributes, time_fired, n=next(_SEQ))
        event = _normalise_or_bad(raw)
        if event is not None:
            events.append(event)
    # One point per (series, time): a later duplicate would overwrite an earlier one.
    unique = {(e.entity_id, e.time_fired_ns): e for e in events}
    assume(unique)
    response = influxd.write(influx_db, [to_line(e, writer="legacy", stored_at_ns=7)
                                         for e in unique.values()])
    assert response.status_code == 204, response.text
    for event in unique.values():
        rows = influxd.query(influx_db, f"SELECT * FROM {MEASUREMENT} "
                                        f"WHERE time = {event.time_fired_ns}")
        row = next(r for r in rows if r["context_id"] == event.context_id)
        assert (row["entity_id"], row["domain"]) == (event.entity_id, event.domain)
        assert (row["state"], row["old_state"]) == (event.state, event.old_state or "")
        assert row["attributes"] == attributes_json(event.attributes)
        assert row["time"] == event.time_fired_ns


# -- what the fuzzing found, pinned (each failed before its fix) --------------------------------


@pytest.mark.parametrize("time_fired", ["9999-12-31T23:59:59.999999+00:00",
                                        "0001-01-01T00:00:00.000000+00:00",
                                        "2262-04-11T23:47:16.854776+00:00"])
def test_a_time_influxdb_cannot_store_is_refused_by_name(time_fired: str) -> None:
    """Accepted before, then refused by InfluxDB with the whole batch at stake: legacy dropped
    it, storage dead-lettered the line after a 200; and when the line held a control character,
    InfluxDB's error header (which echoes the line) was illegal HTTP, so the refusal looked
    like a network error and storage retried that batch for ever."""
    with pytest.raises(BadEvent, match=r"^event\.time_fired: .* outside the time range"):
        normalise(_valid_event("sensor.t", "1", "2", {}, time_fired), RECEIVED)


def test_an_event_too_large_to_forward_is_refused_by_name() -> None:
    """A 5 MiB state_changed event was ingested: batches holding it were over the next
    service's body limit (413), and the outbox held every event behind them for ever."""
    big = {"snapshot": "x" * MAX_ATTRIBUTES_BYTES}
    with pytest.raises(BadEvent, match=r"^event\.data\.new_state\.attributes: 1,048,5\d\d bytes"):
        normalise(_valid_event("camera.blob", None, "idle", big), RECEIVED)
    with pytest.raises(BadEvent, match=r"^event\.data\.new_state\.state: 65,537 bytes"):
        normalise(_valid_event("sensor.s", None, "é" * 32768 + "x", {}), RECEIVED)
    with pytest.raises(BadEvent, match=r"^event\.data\.old_state\.state: "):
        normalise(_valid_event("sensor.s", "x" * (MAX_STATE_BYTES + 1), "on", {}), RECEIVED)
    at_limit = normalise(_valid_event("sensor.s", None, "é" * 32768,
                                      {"a": "x" * (MAX_ATTRIBUTES_BYTES - 20)}), RECEIVED)
    assert len(at_limit.state or "") == 32768
