"""The generated fleet: reproducible, HA-shaped states, and its odd events at the asked rates."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pydantic
import pytest

from simulators.home_assistant.events import StateChange
from simulators.home_assistant.fleet import DEFAULT_DOMAINS, Fleet, FleetSpec
from simulators.home_assistant.timefmt import iso_from_ns

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")
ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
ENTITY_ID = re.compile(r"^[a-z_]+\.[a-z0-9_]+$")
STATE_KEYS = ["entity_id", "state", "attributes", "last_changed", "last_reported",
              "last_updated", "context"]
DOWN = ("unavailable", "unknown")
START_NS = 1_780_000_000_123_456_789

# What Home Assistant accepts per sensor device_class (metric and imperial).
UNITS = {
    "temperature": {"°C", "°F"}, "humidity": {"%"}, "power": {"W", "kW"},
    "energy": {"Wh", "kWh", "MWh"}, "illuminance": {"lx"}, "battery": {"%"},
    "pressure": {"hPa", "mbar", "kPa", "inHg", "psi"}, "voltage": {"V", "mV"},
    "current": {"A", "mA"}, "carbon_dioxide": {"ppm"}, "signal_strength": {"dBm", "dB"},
}


def stream(fleet: Fleet, n: int) -> Iterator[tuple[int, StateChange]]:
    """``n`` changes at uneven, increasing times (sub-microsecond parts included)."""
    now = START_NS
    for i in range(n):
        now += 1_234_567 + (i % 7) * 999_999_937
        yield now, fleet.next_change(now)


def run(fleet: Fleet, n: int) -> list[tuple[int, StateChange]]:
    return list(stream(fleet, n))


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def type_changes(change: StateChange) -> int:
    """How many attributes present before and after changed JSON type."""
    if change.old_state is None or change.new_state is None:
        return 0
    old, new = change.old_state["attributes"], change.new_state["attributes"]
    return sum(json_type(old[k]) != json_type(new[k]) for k in old.keys() & new.keys())


def test_same_seed_gives_same_changes() -> None:
    spec = FleetSpec(entities=200, seed=7, p_unavailable=0.05, p_add_remove=0.02,
                     p_type_change=0.05)
    a, b = Fleet(spec), Fleet(spec)
    assert a.entity_ids() == b.entity_ids()
    changes_a, changes_b = run(a, 1500), run(b, 1500)
    assert changes_a == changes_b  # context ids included
    assert a.states() == b.states()


def test_states_before_first_change_do_not_shift_the_sequence() -> None:
    spec = FleetSpec(entities=100, seed=3)
    a, b = Fleet(spec), Fleet(spec)
    a.states()  # starts the fleet on the wall clock
    assert [c.context_id for _, c in run(a, 200)] == [c.context_id for _, c in run(b, 200)]


def test_different_seeds_differ() -> None:
    a, b = Fleet(FleetSpec(entities=200, seed=1)), Fleet(FleetSpec(entities=200, seed=2))
    assert a.entity_ids() != b.entity_ids()
    ids_a = [c.context_id for _, c in run(a, 50)]
    ids_b = [c.context_id for _, c in run(b, 50)]
    assert not set(ids_a) & set(ids_b)


def test_default_domain_mix_matches_weights() -> None:
    fleet = Fleet(FleetSpec(entities=5000, seed=11))
    counts = Counter(eid.split(".")[0] for eid in fleet.entity_ids())
    total = sum(DEFAULT_DOMAINS.values())
    assert set(counts) == set(DEFAULT_DOMAINS)
    for domain, weight in DEFAULT_DOMAINS.items():
        assert abs(counts[domain] / 5000 - weight / total) < 0.025, (domain, counts)
    assert counts.most_common(1)[0][0] == "sensor"


def test_custom_domain_mix_and_zero_weight() -> None:
    fleet = Fleet(FleetSpec(entities=5000, seed=5, domains={"light": 3, "switch": 1,
                                                              "climate": 0}))
    counts = Counter(eid.split(".")[0] for eid in fleet.entity_ids())
    assert set(counts) == {"light", "switch"}
    assert abs(counts["light"] / 5000 - 0.75) < 0.025


def test_state_objects_have_home_assistant_shape() -> None:
    fleet = Fleet(FleetSpec(entities=300, seed=2, p_unavailable=0.05, p_add_remove=0.02,
                            p_type_change=0.05))
    initial = fleet.states()
    changes = run(fleet, 2000)
    states = initial + [s for _, c in changes for s in (c.old_state, c.new_state) if s]
    for state in states:
        assert list(state) == STATE_KEYS
        assert ENTITY_ID.match(state["entity_id"]), state["entity_id"]
        assert isinstance(state["state"], str)
        assert isinstance(state["attributes"], dict)
        assert "friendly_name" in state["attributes"]
        for key in ("last_changed", "last_reported", "last_updated"):
            assert ISO.match(state[key]), state[key]
        context = state["context"]
        assert list(context) == ["id", "parent_id", "user_id"]
        assert ULID.match(context["id"])
        # A triggered automation run has a parent; a call from the frontend, a user.
        assert context["parent_id"] is None or ULID.match(context["parent_id"])
        assert context["user_id"] is None or re.fullmatch(r"[0-9a-f]{32}", context["user_id"])
    for now, change in changes:
        assert change.time_fired_ns == now
        assert ULID.match(change.context_id)
        if change.new_state is not None:
            assert change.context_id == change.new_state["context"]["id"]
            assert change.new_state["last_reported"] == iso_from_ns(now)
            assert change.entity_id == change.new_state["entity_id"]
    assert len(set(fleet.entity_ids())) == len(fleet.entity_ids())
    # A context is one cause: events of different causes never share one.
    causes = [c.new_state["context"] if c.new_state else c.context_id for _, c in changes]
    distinct = {id(x) if isinstance(x, dict) else x for x in causes}
    ids = [x["id"] if isinstance(x, dict) else x for x in causes]
    assert len(set(ids) | {s["context"]["id"] for s in initial}) == len(distinct) + len(initial)


def test_sensor_units_match_device_class() -> None:
    fleet = Fleet(FleetSpec(entities=1000, seed=4, domains={"sensor": 1}, p_unavailable=0.02))
    states = fleet.states() + [c.new_state for _, c in run(fleet, 2000) if c.new_state]
    numeric = 0
    for state in states:
        attrs = state["attributes"]
        if "unit_of_measurement" not in attrs:
            assert attrs.get("device_class") in (None, "enum", "timestamp"), attrs
            continue
        numeric += 1
        assert attrs["unit_of_measurement"] in UNITS[attrs["device_class"]], attrs
        assert attrs["state_class"] in ("measurement", "total", "total_increasing")
        if state["state"] not in DOWN:
            value = float(state["state"])
            if attrs["device_class"] in ("battery", "humidity"):
                assert 0 <= value <= 100, state
    assert numeric > len(states) // 2


def test_last_changed_moves_only_with_the_state() -> None:
    fleet = Fleet(FleetSpec(entities=200, seed=9, p_unavailable=0.05, p_type_change=0.1,
                            p_add_remove=0))
    first = fleet.next_change(START_NS)
    first_iso = iso_from_ns(START_NS)
    for state in fleet.states():  # initial states: a little before the first change
        if state["entity_id"] != first.entity_id:
            assert state["last_changed"] <= state["last_updated"] <= state["last_reported"]
            assert state["last_reported"] < first_iso
    attribute_only = 0
    for now, change in run(fleet, 3000):
        old, new, iso = change.old_state, change.new_state, iso_from_ns(now)
        assert old is not None and new is not None
        assert new["last_reported"] == iso
        # Every state_changed shows something: HA does not fire one for an identical state.
        assert (old["state"], old["attributes"]) != (new["state"], new["attributes"])
        if new["state"] != old["state"]:
            assert new["last_changed"] == new["last_updated"] == iso
        else:
            attribute_only += 1
            assert new["last_changed"] == old["last_changed"] != iso
            assert new["last_updated"] == iso
    assert attribute_only > 100


def test_additions_and_removals_keep_the_count_near_the_target() -> None:
    fleet = Fleet(FleetSpec(entities=300, seed=6, p_add_remove=0.05))
    added = removed = 0
    for _, change in stream(fleet, 2000):
        live = fleet.entity_ids()
        if change.new_state is None:
            removed += 1
            assert change.old_state is not None
            assert change.entity_id not in live and fleet.state(change.entity_id) is None
        elif change.old_state is None:
            added += 1
            assert change.entity_id in live
            assert fleet.state(change.entity_id) is change.new_state
            assert change.new_state["last_changed"] == change.new_state["last_reported"]
        else:
            assert change.entity_id in live
        assert 270 <= len(live) <= 330
        assert len(fleet.states()) == len(live)
    assert added > 10 and removed > 10
    assert 60 < added + removed < 145  # 2000 * 0.05 = 100 expected


def test_entity_count_reverts_to_the_target() -> None:
    # 2,000 additions/removals: a plain coin-flip walk would stray about +-45 from 50.
    fleet = Fleet(FleetSpec(entities=50, seed=16, p_add_remove=0.5))
    counts = [len(fleet.entity_ids()) for _ in stream(fleet, 4000)]
    assert min(counts) >= 40 and max(counts) <= 60
    assert len(set(counts)) > 3  # it does move


def test_no_additions_or_removals_at_zero_probability() -> None:
    fleet = Fleet(FleetSpec(entities=100, seed=6, p_add_remove=0.0))
    changes = run(fleet, 2000)
    assert all(c.old_state is not None and c.new_state is not None for _, c in changes)
    assert len(fleet.entity_ids()) == 100


def test_attribute_type_flips_follow_p_type_change() -> None:
    # Climate and device_tracker attributes keep their JSON types in normal changes.
    domains = {"climate": 1, "device_tracker": 1}
    calm = Fleet(FleetSpec(entities=100, seed=8, domains=domains, p_unavailable=0,
                           p_add_remove=0, p_type_change=0))
    assert sum(type_changes(c) for _, c in run(calm, 2000)) == 0
    flippy = Fleet(FleetSpec(entities=100, seed=8, domains=domains, p_unavailable=0,
                             p_add_remove=0, p_type_change=0.5))
    changes = [c for _, c in run(flippy, 2000)]
    flips = [c for c in changes if type_changes(c)]
    # A flip, then the next ordinary change of that entity flips it back: about 2 x 50 %.
    assert len(flips) > 700
    number_to_string = 0
    for c in flips:
        assert c.old_state is not None and c.new_state is not None
        old = c.old_state["attributes"]
        number_to_string += sum(isinstance(v, str) and json_type(old.get(k)) == "number"
                                for k, v in c.new_state["attributes"].items())
    assert number_to_string > 50  # e.g. battery_level 87 -> "low"


def test_unavailable_and_unknown_appear_and_recover() -> None:
    fleet = Fleet(FleetSpec(entities=100, seed=10, p_unavailable=0.2, p_add_remove=0,
                            p_type_change=0))
    seen: Counter[str] = Counter()
    recovered = 0
    for _, change in run(fleet, 3000):
        old, new = change.old_state, change.new_state
        assert old is not None and new is not None
        if new["state"] in DOWN:
            seen[new["state"]] += 1
            assert old["state"] not in DOWN
            # HA keeps only friendly_name and capability attributes for a missing entity.
            assert "friendly_name" in new["attributes"]
            assert set(new["attributes"]) <= set(old["attributes"])
            for gone in ("brightness", "current_temperature", "latitude", "media_title",
                         "last_triggered", "battery_level"):
                assert gone not in new["attributes"]
        if old["state"] in DOWN:
            recovered += 1
            assert new["state"] not in DOWN
    assert seen["unavailable"] > 50 and seen["unknown"] > 10
    assert recovered > 50


def test_recovery_restores_the_state_before_the_outage() -> None:
    fleet = Fleet(FleetSpec(entities=50, seed=12, p_unavailable=0.3, p_add_remove=0,
                            p_type_change=0))
    before: dict[str, dict[str, Any]] = {}
    checked = 0
    for _, change in run(fleet, 1500):
        old, new = change.old_state, change.new_state
        assert old is not None and new is not None
        if new["state"] in DOWN:
            before[change.entity_id] = old
        elif old["state"] in DOWN:
            checked += 1
            was = before.pop(change.entity_id)
            assert (new["state"], new["attributes"]) == (was["state"], was["attributes"])
    assert checked > 50


def test_returned_states_are_never_mutated_later() -> None:
    fleet = Fleet(FleetSpec(entities=50, seed=13, p_unavailable=0.05, p_add_remove=0.05,
                            p_type_change=0.1))
    initial = fleet.states()
    early = run(fleet, 300)
    snapshot = json.dumps([initial, [(c.old_state, c.new_state) for _, c in early]])
    run(fleet, 3000)
    assert json.dumps([initial, [(c.old_state, c.new_state) for _, c in early]]) == snapshot


def test_domain_specific_attributes() -> None:
    fleet = Fleet(FleetSpec(entities=400, seed=14, p_unavailable=0, p_type_change=0,
                            p_add_remove=0))
    states = fleet.states() + [c.new_state for _, c in run(fleet, 3000) if c.new_state]
    seen: set[str] = set()
    for s in states:
        domain, st, a = s["entity_id"].split(".")[0], s["state"], s["attributes"]
        seen.add(domain)
        if domain in ("binary_sensor", "switch", "automation"):
            assert st in ("on", "off")
        if domain == "binary_sensor":
            assert a["device_class"] in ("motion", "door", "window", "occupancy", "moisture")
        elif domain == "light":
            assert st in ("on", "off")
            if st == "off":
                assert a["color_mode"] is None
                assert all(a[k] is None for k in ("brightness", "hs_color", "rgb_color",
                                                  "color_temp_kelvin") if k in a)
            elif "brightness" in a:
                assert 0 <= a["brightness"] <= 255 and a["color_mode"] in a["supported_color_modes"]
        elif domain == "climate":
            assert st in ("heat", "cool", "off", "auto") and st in a["hvac_modes"]
            assert a["min_temp"] <= a["temperature"] <= a["max_temp"]
            assert isinstance(a["current_temperature"], float)
            assert a["hvac_action"] in ("heating", "cooling", "idle", "off")
        elif domain == "media_player":
            assert st in ("playing", "paused", "idle", "off")
            if st in ("playing", "paused"):
                assert a["media_title"] and a["media_artist"]
                assert 0 <= a["volume_level"] <= 1
        elif domain == "device_tracker":
            assert st != ""
            assert a["source_type"] == "gps" and -90 <= a["latitude"] <= 90
            assert isinstance(a["gps_accuracy"], int)
        elif domain == "automation":
            assert a["mode"] in ("single", "restart", "queued", "parallel")
            assert a["last_triggered"] is None or ISO.match(a["last_triggered"])
            assert a["current"] in (0, 1) and isinstance(a["id"], str)
    assert seen == set(DEFAULT_DOMAINS)


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"domains": {"sensor": 1, "toaster": 1}}, "domains", ["toaster", "binary_sensor"]),
        ({"domains": {"light": -1}}, "domains", ["light"]),
        ({"domains": {"light": 0}}, "domains", ["sum"]),
        ({"p_unavailable": -0.1}, "p_unavailable", []),
        ({"p_type_change": 1.5}, "p_type_change", []),
        ({"p_add_remove": float("nan")}, "p_add_remove", []),
        ({"entities": 0}, "entities", []),
        ({"entites": 10}, "entites", []),  # a typo must not pass silently
    ],
)
def test_bad_spec_is_rejected(kwargs: dict[str, Any], field: str, words: list[str]) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        FleetSpec(**kwargs)
    message = str(info.value)
    assert field in message
    for word in words:
        assert word in message


def test_state_lookup() -> None:
    fleet = Fleet(FleetSpec(entities=20, seed=15))
    states = fleet.states()
    assert [s["entity_id"] for s in states] == fleet.entity_ids()
    assert all(fleet.state(s["entity_id"]) is s for s in states)
    assert fleet.state("sensor.does_not_exist") is None
