"""Event model, normalisation, JSON between services, line protocol against a real influxd."""

from __future__ import annotations

import calendar
import copy
import itertools
import json
from datetime import datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from pipeline.common.events import (
    MEASUREMENT,
    BadEvent,
    Event,
    dumps_batch,
    dumps_event,
    entity_id_problem,
    loads_batch,
    loads_event,
)
from pipeline.common.line_protocol import LineProtocolError, attributes_json
from pipeline.common.normalise import normalise, parse_time
from pipeline.common.points import to_line
from simulators.home_assistant.timefmt import iso_from_ns
from tests.fixtures.influx import InfluxServer
from tests.pipeline.ha_factory import T0_NS, ha_event

RECEIVED = 1_782_422_405_200_000_000


# --------------------------------------------------------------------------- normalise


def test_state_change_is_normalised_with_every_field() -> None:
    raw = ha_event("sensor.living_room_temperature", "21.40", "21.50")
    event = normalise(raw, RECEIVED)
    assert event.context_id == raw["context"]["id"] and len(event.context_id) == 26
    assert event.event_type == "state_changed"
    assert event.entity_id == "sensor.living_room_temperature"
    assert event.domain == "sensor"
    assert event.time_fired_ns == T0_NS
    assert (event.old_state, event.state) == ("21.40", "21.50")
    assert event.attributes == raw["data"]["new_state"]["attributes"]
    assert event.received_at_ns == RECEIVED
    assert event.enriched_at_ns is None and event.weather is None
    assert event.weather_enriched is False
    assert event.flags == []


def test_addition_has_no_old_state() -> None:
    event = normalise(
        ha_event("light.kitchen", None, "on", attributes={"brightness": 255}), RECEIVED
    )
    assert (event.old_state, event.state, event.attributes) == (None, "on", {"brightness": 255})


def test_removal_has_no_state_and_no_attributes() -> None:
    event = normalise(ha_event("light.kitchen", "off", None), RECEIVED)
    assert (event.old_state, event.state, event.attributes) == ("off", None, {})
    # Stored as strings all the same: a removal's state is "" (never null, never a type change).
    assert 'state="",old_state="off"' in to_line(event, writer="new", stored_at_ns=1)


@pytest.mark.parametrize(
    "state", ["on", "off", "0", "1", "21.50", "1e3", "True", "unavailable", "unknown", "", " 7 "]
)
def test_state_is_kept_as_home_assistants_string(state: str) -> None:
    event = normalise(ha_event("sensor.x", state, state), RECEIVED)
    assert event.state == state and event.old_state == state
    assert type(event.state) is str
    line = to_line(event, writer="legacy", stored_at_ns=1)
    assert f'state="{state}",old_state="{state}"' in line
    assert loads_event(dumps_event(event)).state == state  # and across services


def test_unknown_event_type_is_named() -> None:
    raw = ha_event()
    raw["event_type"] = "call_service"
    with pytest.raises(BadEvent) as err:
        normalise(raw, RECEIVED)
    assert str(err.value) == (
        "event.event_type: unknown event type 'call_service' (only 'state_changed' is ingested)"
    )


def _delete(path: str) -> Any:
    def mutate(raw: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = raw
        for key in parents:
            node = node[key]
        del node[last]

    return mutate


def _set(path: str, value: object) -> Any:
    def mutate(raw: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = raw
        for key in parents:
            node = node[key]
        node[last] = value

    return mutate


def _both_null(raw: dict[str, Any]) -> None:
    raw["data"]["old_state"] = raw["data"]["new_state"] = None


MALFORMED = [
    (_delete("event_type"), "event.event_type: missing"),
    (_set("event_type", 7), "event.event_type: expected a string, got int"),
    (_delete("data"), "event.data: missing"),
    (_set("data", []), "event.data: expected an object, got list"),
    (_delete("data.entity_id"), "event.data.entity_id: missing"),
    (_set("data.entity_id", 5), "event.data.entity_id: expected a string, got int"),
    (_set("data.entity_id", "sensorx"),
     "event.data.entity_id: 'sensorx' is not of the form <domain>.<object_id>"),
    (_set("data.entity_id", "sensor."),
     "event.data.entity_id: 'sensor.' is not of the form <domain>.<object_id>"),
    (_set("data.entity_id", ""), "event.data.entity_id: empty"),
    (_set("data.entity_id", "s." + "x" * 300),
     "event.data.entity_id: longer than 255 characters (302)"),
    (_delete("context"), "event.context: missing"),
    (_set("context", None), "event.context: expected an object, got null"),
    (_delete("context.id"), "event.context.id: missing"),
    (_set("context.id", "01ABC"), "event.context.id: expected a 26-character ULID, got '01ABC'"),
    (_delete("time_fired"), "event.time_fired: missing"),
    (_set("time_fired", 1782422405.16), "event.time_fired: expected a string, got float"),
    (_set("time_fired", "yesterday"), "event.time_fired: not an ISO 8601 timestamp: 'yesterday'"),
    (_set("time_fired", "2026-06-25T21:20:05.162552"),
     "event.time_fired: '2026-06-25T21:20:05.162552' has no UTC offset"),
    (_delete("data.new_state"), "event.data.new_state: missing"),
    (_delete("data.old_state"), "event.data.old_state: missing"),
    (_both_null, "event.data: old_state and new_state are both null"),
    (_set("data.new_state", "on"), "event.data.new_state: expected an object, got str"),
    (_delete("data.new_state.state"), "event.data.new_state.state: missing"),
    (_set("data.new_state.state", 21.5),
     "event.data.new_state.state: expected a string, got float"),
    (_set("data.new_state.state", True), "event.data.new_state.state: expected a string, got bool"),
    (_set("data.old_state.state", None), "event.data.old_state.state: expected a string, got null"),
    (_delete("data.new_state.attributes"), "event.data.new_state.attributes: missing"),
    (_set("data.new_state.attributes", "x"),
     "event.data.new_state.attributes: expected an object, got str"),
]


@pytest.mark.parametrize(("mutate", "message"), MALFORMED, ids=[m for _, m in MALFORMED])
def test_malformed_event_names_the_field(mutate: Any, message: str) -> None:
    raw = copy.deepcopy(ha_event())
    mutate(raw)
    with pytest.raises(BadEvent) as err:
        normalise(raw, RECEIVED)
    assert str(err.value) == message


def test_not_an_object_and_unserialisable_attributes() -> None:
    with pytest.raises(BadEvent, match=r"^event: expected an object, got list$"):
        normalise([], RECEIVED)
    raw = ha_event(attributes={"when": object()})
    with pytest.raises(
        BadEvent, match=r"^event\.data\.new_state\.attributes: not JSON-serialisable"
    ):
        normalise(raw, RECEIVED)


def test_bad_event_is_a_value_error() -> None:
    assert issubclass(BadEvent, ValueError)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-06-25T21:20:05.162552+00:00",
         calendar.timegm((2026, 6, 25, 21, 20, 5)) * 10**9 + 162_552_000),
        ("2026-06-25T23:20:05.162552+02:00",
         calendar.timegm((2026, 6, 25, 21, 20, 5)) * 10**9 + 162_552_000),
        ("2026-06-25T21:20:05.000001Z", calendar.timegm((2026, 6, 25, 21, 20, 5)) * 10**9 + 1_000),
        ("2026-06-25T21:20:05.999999+00:00",
         calendar.timegm((2026, 6, 25, 21, 20, 5)) * 10**9 + 999_999_000),
        ("2026-06-25T21:20:05.162552123+00:00",
         calendar.timegm((2026, 6, 25, 21, 20, 5)) * 10**9 + 162_552_123),
        ("1969-12-31T23:59:59.999999+00:00", -1_000),
    ],
)
def test_time_fired_is_exact(text: str, expected: int) -> None:
    raw = ha_event()
    raw["time_fired"] = text
    assert normalise(raw, RECEIVED).time_fired_ns == expected


def test_parse_time_is_public_and_names_its_field() -> None:
    assert parse_time("2026-06-25T21:20:05.162552+00:00") == T0_NS
    with pytest.raises(BadEvent, match=r"^start: not an ISO 8601 timestamp"):
        parse_time("soon", "start")


def test_time_fired_exact_where_float_seconds_are_not() -> None:
    # The trap this guards against: float(seconds) * 1e9 is off by tens of ns at 2026 epochs.
    raw = ha_event()
    ns = normalise(raw, RECEIVED).time_fired_ns
    assert ns == T0_NS
    float_path = datetime.fromisoformat(raw["time_fired"]).timestamp() * 1e9
    assert int(float_path) != T0_NS  # the float path really would be wrong (by 64 ns here)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=4_102_444_800_000_000))  # µs up to 2100
def test_time_fired_round_trips_to_the_microsecond(us: int) -> None:
    raw = ha_event()
    raw["time_fired"] = iso_from_ns(us * 1000)
    assert normalise(raw, RECEIVED).time_fired_ns == us * 1000


def test_nonstandard_but_storable_entity_id_is_kept_and_flagged() -> None:
    event = normalise(ha_event("Sensor.Living Room"), RECEIVED)
    assert event.entity_id == "Sensor.Living Room" and event.domain == "Sensor"
    assert event.flags == ["nonstandard_entity_id"]


def test_state_object_for_another_entity_is_flagged() -> None:
    raw = ha_event("sensor.a")
    raw["data"]["new_state"]["entity_id"] = "sensor.b"
    assert normalise(raw, RECEIVED).flags == ["new_state_entity_id_mismatch"]


# Entity ids that no InfluxDB 1.x line can carry exactly: refused, never stored altered.
UNSTORABLE = [
    "sensor.new\nline",
    "sensor.ends\\",
    "sensor.ends_twice\\\\",
    "dom\\.x",
    "sensor.bs\\ sp\\,ace",
    "sen\\ s\\,or.x",
]


@pytest.mark.parametrize("entity_id", UNSTORABLE)
def test_unstorable_entity_id_is_refused_everywhere(entity_id: str) -> None:
    with pytest.raises(BadEvent, match=r"^event\.data\.entity_id: .*cannot be an InfluxDB tag"):
        normalise(ha_event(entity_id), RECEIVED)
    good = normalise(ha_event(), RECEIVED)
    unstorable = {"entity_id": entity_id, "domain": entity_id.partition(".")[0]}
    with pytest.raises(ValidationError):
        Event(**{**good.model_dump(), **unstorable})
    sneaked = good.model_copy(update=unstorable)
    with pytest.raises(LineProtocolError):
        to_line(sneaked, writer="new", stored_at_ns=1)


# --------------------------------------------------------------------------- Event model & JSON


def _event(**overrides: Any) -> Event:
    base = normalise(ha_event(), RECEIVED).model_dump()
    base.update(overrides)
    return Event(**base)


def test_json_round_trip_between_services() -> None:
    events = [
        _event(),
        normalise(ha_event("light.k", None, "on"), RECEIVED),
        normalise(ha_event("light.k", "on", None), RECEIVED),
        _event(
            enriched_at_ns=RECEIVED + 5,
            weather={"temperature": 18.5, "condition": "rainy"},
            weather_enriched=True,
            flags=["weather_stale"],
        ),
    ]
    for event in events:
        assert loads_event(dumps_event(event)) == event
    assert loads_batch(dumps_batch(events)) == events
    assert orjson.loads(dumps_batch(events))["events"][3]["weather"] == {
        "temperature": 18.5,
        "condition": "rainy",
    }


def test_bad_batch_names_the_event_and_field() -> None:
    body = orjson.loads(dumps_batch([_event(), _event()]))
    body["events"][1]["context_id"] = "short"
    with pytest.raises(
        BadEvent, match=r"^events\.1\.context_id: String should have at least 26 characters"
    ):
        loads_batch(orjson.dumps(body))
    body["events"][1] = {**body["events"][0], "colour": "red"}
    with pytest.raises(BadEvent, match=r"^events\.1\.colour: Extra inputs are not permitted"):
        loads_batch(orjson.dumps(body))
    with pytest.raises(BadEvent):
        loads_batch(b"{not json")
    with pytest.raises(BadEvent, match=r"^event\.entity_id: "):
        loads_event(
            orjson.dumps({**body["events"][0], "entity_id": "sensor.ends\\", "domain": "sensor"})
        )


def test_weather_values_are_checked() -> None:
    assert _event(weather={"temperature": 21, "condition": "sunny"}).weather == {
        "temperature": 21.0,
        "condition": "sunny",
    }
    for bad in (
        {"t": True}, {"t": float("nan")}, {"t": float("inf")}, {"t": [1]}, {"bad name": 1.0}
    ):
        with pytest.raises(ValidationError):
            _event(weather=bad)


def test_domain_must_match_and_an_event_must_have_a_state() -> None:
    with pytest.raises(ValidationError, match="does not match"):
        _event(domain="light")
    with pytest.raises(ValidationError, match="both None"):
        _event(state=None, old_state=None)


# --------------------------------------------------------------------------- line protocol


def test_line_has_the_contract_shape() -> None:
    event = _event(
        enriched_at_ns=RECEIVED + 7,
        weather={"temperature": 18.5, "condition": 'light "drizzle"', "humidity": 80},
        weather_enriched=True,
    )
    line = to_line(event, writer="new", stored_at_ns=99)
    assert line == (
        "home_assistant_events,domain=sensor,entity_id=sensor.living_room_temperature,"
        "event_type=state_changed "
        f'context_id="{event.context_id}",state="21.50",old_state="21.40",'
        'attributes="{\\"device_class\\":\\"temperature\\",\\"friendly_name\\":\\"Living room\\",'
        '\\"unit_of_measurement\\":\\"°C\\"}",'
        f"received_at={RECEIVED}i,enriched_at={RECEIVED + 7}i,stored_at=99i,"
        'weather_condition="light \\"drizzle\\"",weather_humidity=80.0,weather_temperature=18.5,'
        f'weather_enriched=true,writer="new",new_stored_at=99i {T0_NS}'
    )


def test_writer_must_be_legacy_or_new() -> None:
    with pytest.raises(ValueError, match="writer"):
        to_line(_event(), writer="shadow", stored_at_ns=1)  # type: ignore[arg-type]


def test_attributes_are_compact_sorted_json() -> None:
    assert (
        attributes_json({"b": 1, "a": {"z": [1, None], "y": "ü"}})
        == '{"a":{"y":"ü","z":[1,null]},"b":1}'
    )


# ----------------------------------------------------------------------- against the real influxd

HOSTILE_ENTITY_IDS = [
    "sensor.with space",
    "sensor.comma,here",
    "sensor.eq=uals",
    'sensor."quoted"',
    "sensor.'single'",
    "sensor.back\\slash",
    "sensor.double\\\\backslash",
    "sensor.a\\b c",
    "sensor.\\lead",
    "sensor.bs\\,comma",
    "sensor.bs\\=eq",
    "sensor.bs\\\\,two",
    "sensor.bs\\\"quote",
    "sensor.ünïcødé_温度_😀",
    "sensor.tab\there",
    "sensor.cr\rhere",
    "sensor.nul\x00here",
    "weird domain,x=y.object",
    "sensor.a.b.c",
    "sensor.#hash{}[]",
]
HOSTILE_STATES = [
    "on", "0", "21.50", "line1\nline2", 'say "hi"', "C:\\path\\", "", "ünï 😀", "back\\", '\\"',
    "tab\t", "crlf\r\n",
]
HOSTILE_ATTRIBUTES = {
    "quote": 'a"b',
    "newline": "x\ny\r\n",
    "backslash": "c:\\dir\\",
    "unicode": "温度😀",
    "nested": {"list": [1, 2.5, None, True, "s p,a=c\\e"]},
    "comma, key=1": "v=1 2",
    "empty": "",
}


def _read_back(influxd: InfluxServer, db: str, where: str = "") -> dict[str, dict[str, Any]]:
    rows = influxd.query(db, f"SELECT * FROM {MEASUREMENT} {where}")
    return {row["context_id"]: row for row in rows}


def test_hostile_strings_survive_the_real_influxd(influxd: InfluxServer, influx_db: str) -> None:
    events: list[Event] = []
    ts = itertools.count(T0_NS, 1_000)
    for entity_id, state in zip(HOSTILE_ENTITY_IDS, itertools.cycle(HOSTILE_STATES), strict=False):
        raw = ha_event(
            entity_id, state, state, attributes=HOSTILE_ATTRIBUTES, time_fired_ns=next(ts)
        )
        events.append(normalise(raw, RECEIVED))
    for state in HOSTILE_STATES:
        raw = ha_event(
            "sensor.plain", state, state, attributes=HOSTILE_ATTRIBUTES, time_fired_ns=next(ts)
        )
        events.append(normalise(raw, RECEIVED))
    lines = [to_line(e, writer="legacy", stored_at_ns=RECEIVED + 1) for e in events]

    response = influxd.write(influx_db, lines)
    assert response.status_code == 204, response.text

    stored = _read_back(influxd, influx_db)
    assert len(stored) == len(events)  # a newline that broke a line would add or lose points
    for event in events:
        row = stored[event.context_id]
        assert row["entity_id"] == event.entity_id
        assert row["domain"] == event.domain
        assert row["state"] == event.state and row["old_state"] == event.old_state
        assert row["attributes"] == attributes_json(HOSTILE_ATTRIBUTES)
        assert json.loads(row["attributes"]) == HOSTILE_ATTRIBUTES
        assert row["time"] == event.time_fired_ns
        assert (row["writer"], row["received_at"], row["stored_at"]) == (
            "legacy", RECEIVED, RECEIVED + 1
        )


@pytest.mark.parametrize("entity_id", UNSTORABLE)
def test_refused_entity_ids_really_cannot_be_stored(
    influxd: InfluxServer, influx_db: str, entity_id: str
) -> None:
    """Why we refuse them: the best escaping there is still does not read back exactly."""
    domain = entity_id.partition(".")[0]

    def naive(value: str) -> str:
        return value.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")

    # A second line, and a newline inside a string, as real batches have: the damage of a
    # misread tag can be to the line splitting rather than to the tag itself.
    lines = [
        f'probe,domain={naive(domain)},entity_id={naive(entity_id)} f="a\nb" 1',
        'probe,domain=ok,entity_id=ok f="c" 2',
    ]
    response = influxd.write(influx_db, lines)
    stored = {
        (r["entity_id"], r["domain"], r["f"])
        for r in influxd.query(influx_db, "SELECT * FROM probe")
    }
    assert response.status_code != 204 or stored != {(entity_id, domain, "a\nb"), ("ok", "ok", "c")}


def test_an_empty_tag_is_left_out_and_reads_back_empty(
    influxd: InfluxServer, influx_db: str
) -> None:
    # Validation never lets an empty domain through; to_line still must not write "domain=".
    event = _event().model_copy(update={"domain": ""})
    line = to_line(event, writer="new", stored_at_ns=1)
    assert ",domain=" not in line
    assert influxd.write(influx_db, [line]).status_code == 204
    rows = influxd.query(influx_db, f"SELECT * FROM {MEASUREMENT} WHERE domain = ''")
    assert [r["context_id"] for r in rows] == [event.context_id]


_TRICKY = st.sampled_from(
    list(' ,="\\\n\r\t\'.{}[]:\x00') + ["\\ ", "\\,", "\\=", '\\"', "😀", "温"]
)
_TEXT = st.lists(st.one_of(_TRICKY, st.characters(codec="utf-8")), max_size=12).map("".join)
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_TEXT, children, max_size=3),
    max_leaves=8,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    domain=_TEXT,
    object_id=_TEXT,
    state=_TEXT,
    attributes=st.dictionaries(_TEXT, _JSON, max_size=4),
    weather=st.dictionaries(
        st.sampled_from(["temperature", "humidity", "condition", "wind_speed"]),
        st.floats(-1e6, 1e6) | _TEXT,
        max_size=3,
    ),
)
def test_line_protocol_round_trips_through_the_real_influxd(
    influxd: InfluxServer, influx_db: str, domain: str, object_id: str, state: str,
    attributes: dict[str, Any], weather: dict[str, float | str],
) -> None:
    entity_id = f"{domain}.{object_id}"
    assume(entity_id_problem(entity_id) is None)
    assume("." not in domain)
    # Weather fields of one name must keep one type in the shared database, as in production.
    weather = {f"{k}_{'s' if isinstance(v, str) else 'f'}": v for k, v in weather.items()}
    time_fired = T0_NS + next(_TIMES) * 1_000  # Home Assistant times are whole microseconds
    raw = ha_event(entity_id, state, state, attributes=attributes, time_fired_ns=time_fired)
    event = normalise(raw, RECEIVED)
    event = event.model_copy(update={"weather": weather or None, "weather_enriched": bool(weather)})

    response = influxd.write(influx_db, [to_line(event, writer="new", stored_at_ns=3)])
    assert response.status_code == 204, response.text

    # By tag and time where InfluxQL can spell the tag (SELECT * by time alone costs series x
    # fields in 1.x, and every example adds a series); its string literals refuse control bytes.
    by_tag = (
        "" if any(c < " " for c in entity_id) else f"entity_id = {_influxql_str(entity_id)} AND "
    )
    rows = influxd.query(
        influx_db, f"SELECT * FROM {MEASUREMENT} WHERE {by_tag}time = {time_fired}"
    )
    assert len(rows) == 1
    row = rows[0]
    assert (row["entity_id"], row["domain"], row["event_type"]) == (
        entity_id, domain, "state_changed"
    )
    assert (row["state"], row["old_state"]) == (state, state)
    assert row["attributes"] == attributes_json(attributes)
    assert orjson.loads(row["attributes"]) == orjson.loads(orjson.dumps(attributes))
    assert row["weather_enriched"] is bool(weather)
    for name, value in weather.items():
        assert row[f"weather_{name}"] == value


_TIMES = itertools.count(1)


def _influxql_str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

