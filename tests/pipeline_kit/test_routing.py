"""Ownership routing: stable, monotone, accurate split; the entry in force chosen by time_fired."""

from __future__ import annotations

import os
import subprocess
import sys
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from pipeline.common.routing import RoutingEntry, RoutingTable, bucket_of

SEC = 1_000_000_000
T0 = 1_700_000_000 * SEC
STEPS = [0, 10, 25, 50, 75, 90, 100]
FLEET = [
    f"{domain}.{room}_{i}"
    for i in range(2000)
    for domain, room in [
        ("light", "kitchen"), ("sensor", "temperature"), ("binary_sensor", "door"),
        ("switch", "plug"), ("climate", "zone"), ("sensor", "humidity"), ("cover", "blind"),
        ("media_player", "tv"), ("lock", "front"), ("fan", "ceiling"),
    ]
]


def at(percent: int, shadow: bool = False, start: int = T0) -> RoutingTable:
    return RoutingTable(entries=(RoutingEntry(effective_from_ns=start, new_percent=percent,
                                              shadow=shadow),))


def test_buckets_are_pinned() -> None:
    # Legacy and new (and every future release of them) must compute exactly these.
    assert [bucket_of(e) for e in ("light.kitchen", "sensor.outdoor_temperature",
                                   "binary_sensor.front_door", "", "switch.ünïcode")] == [
        1224, 5496, 6876, 9876, 969,
    ]


def test_owner_is_the_same_in_another_process_with_another_hash_seed() -> None:
    code = (
        "from pipeline.common.routing import RoutingTable, RoutingEntry\n"
        f"t = RoutingTable(entries=(RoutingEntry(effective_from_ns=0, new_percent=50),))\n"
        f"print(''.join('n' if t.owner(e, 1) == 'new' else 'l' for e in {FLEET[:300]!r}))\n"
    )
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        outputs.add(subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                   capture_output=True, text=True).stdout.strip())
    here = "".join("n" if at(50, start=0).owner(e, 1) == "new" else "l" for e in FLEET[:300])
    assert outputs == {here}


@pytest.mark.parametrize("percent", STEPS)
def test_split_is_within_3_points_of_the_target(percent: int) -> None:
    table = at(percent)
    assert len(FLEET) == 20_000
    new = sum(table.owner(e, T0) == "new" for e in FLEET)
    assert abs(100 * new / len(FLEET) - percent) <= 3.0
    if percent in (0, 100):
        assert new == percent * len(FLEET) // 100  # the ends are exact


def test_raising_the_percent_only_moves_entities_legacy_to_new() -> None:
    owners = {p: {e: at(p).owner(e, T0) for e in FLEET} for p in STEPS}
    for lower, higher in pairwise(STEPS):
        assert not [e for e in FLEET if owners[lower][e] == "new" and owners[higher][e] != "new"]


@given(entity=st.text(max_size=40), p1=st.integers(0, 100), p2=st.integers(0, 100))
def test_monotone_for_any_entity_and_percents(entity: str, p1: int, p2: int) -> None:
    low, high = sorted((p1, p2))
    if at(low).owner(entity, T0) == "new":
        assert at(high).owner(entity, T0) == "new"


def test_before_the_first_entry_legacy_owns_everything() -> None:
    table = at(100)
    assert all(table.owner(e, T0 - 1) == "legacy" for e in FLEET[:500])
    assert RoutingTable().owner("light.kitchen", T0) == "legacy"
    assert not table.shadow_enabled_at(T0 - 1)


def test_the_entry_in_force_is_the_last_that_started_at_or_before_time_fired() -> None:
    table = RoutingTable(entries=(
        RoutingEntry(effective_from_ns=T0, new_percent=0, shadow=True),
        RoutingEntry(effective_from_ns=T0 + 10 * SEC, new_percent=25, shadow=True),
        RoutingEntry(effective_from_ns=T0 + 20 * SEC, new_percent=100, shadow=False),
    ))
    assert table.entry_at(T0 - 1) is None
    assert table.entry_at(T0).new_percent == 0  # type: ignore[union-attr]
    assert table.entry_at(T0 + 10 * SEC - 1).new_percent == 0  # type: ignore[union-attr]
    assert table.entry_at(T0 + 10 * SEC).new_percent == 25  # type: ignore[union-attr]
    assert table.entry_at(T0 + 10**6 * SEC).new_percent == 100  # type: ignore[union-attr]
    assert table.shadow_enabled_at(T0 + 15 * SEC)
    assert not table.shadow_enabled_at(T0 + 25 * SEC)
    entity = next(e for e in FLEET if bucket_of(e) >= 2500)  # not in the first 25 %
    assert table.owner(entity, T0 + 15 * SEC) == "legacy"
    assert table.owner(entity, T0 + 25 * SEC) == "new"


def test_a_switch_and_a_rollback_are_entries_and_history_stays_decidable() -> None:
    table = RoutingTable()
    now = T0
    for percent in (0, 10, 50):
        table = table.announce(new_percent=percent, shadow=True, now_ns=now, lead_ns=5 * SEC)
        now += 60 * SEC
    table = table.announce(new_percent=0, shadow=True, now_ns=now, lead_ns=5 * SEC)  # rollback
    assert [e.new_percent for e in table.entries] == [0, 10, 50, 0]
    during_50 = table.entries[2].effective_from_ns
    after_rollback = table.entries[3].effective_from_ns
    movers = [e for e in FLEET if bucket_of(e) < 5000]
    # An event from the 50 % phase, replayed after the rollback, is still decided as then.
    assert all(table.owner(e, during_50) == "new" for e in movers)
    assert all(table.owner(e, after_rollback) == "legacy" for e in FLEET)


def test_announce_puts_the_boundary_strictly_after_anything_already_settled() -> None:
    table = RoutingTable().extended(now_ns=T0, lead_ns=5 * SEC)
    assert table.valid_until_ns == T0 + 5 * SEC
    # admin-api's clock stepped back 3 s: the new boundary still lies past what was served
    changed = table.announce(new_percent=10, shadow=True, now_ns=T0 - 3 * SEC, lead_ns=5 * SEC)
    assert changed.entries[-1].effective_from_ns == T0 + 5 * SEC + 1
    assert changed.valid_until_ns == T0 + 5 * SEC
    assert changed.extended(now_ns=T0 - 10 * SEC, lead_ns=SEC).valid_until_ns == T0 + 5 * SEC


@given(ops=st.lists(
    st.tuples(st.sampled_from(["serve", "announce"]), st.integers(-5, 30), st.integers(0, 100)),
    max_size=30,
))
def test_whatever_was_served_stays_true_forever(ops: list[tuple[str, int, int]]) -> None:
    """The core guarantee: for every table ever served, the final history decides every
    time_fired <= that table's valid_until exactly as it did (the clock may even step back)."""
    lead = 5
    table = RoutingTable()
    served: list[RoutingTable] = []
    for op, now, percent in ops:
        if op == "serve":
            table = table.extended(now_ns=now, lead_ns=lead)
            served.append(table)
        else:
            table = table.announce(new_percent=percent, shadow=False, now_ns=now, lead_ns=lead)
    for snapshot in served:
        assert snapshot.valid_until_ns is not None
        for t in range(-10, snapshot.valid_until_ns + 1):
            assert table.entry_at(t) == snapshot.entry_at(t)


def test_json_round_trip() -> None:
    table = RoutingTable(entries=(RoutingEntry(effective_from_ns=T0, new_percent=25,
                                               shadow=True),), valid_until_ns=T0 + SEC)
    assert RoutingTable.from_json(table.to_json()) == table
    assert RoutingTable.from_json(table.to_json().encode()) == table


@pytest.mark.parametrize("payload", [
    '{"entries": [{"effective_from_ns": 2, "new_percent": 10}, '
    '{"effective_from_ns": 1, "new_percent": 20}]}',
    '{"entries": [{"effective_from_ns": 1, "new_percent": 10}, '
    '{"effective_from_ns": 1, "new_percent": 20}]}',
    '{"entries": [{"effective_from_ns": 1, "new_percent": 101}]}',
    '{"entries": [{"effective_from_ns": -1, "new_percent": 10}]}',
    '{"entries": [], "surprise": 1}',
])
def test_malformed_tables_are_refused(payload: str) -> None:
    with pytest.raises(ValidationError):
        RoutingTable.from_json(payload)


def test_covers_is_inclusive_and_a_local_table_covers_everything() -> None:
    assert RoutingTable(valid_until_ns=10).covers(10)
    assert not RoutingTable(valid_until_ns=10).covers(11)
    assert RoutingTable().covers(10**30)


@given(st.lists(st.tuples(st.sampled_from(FLEET[:50]), st.integers(T0 - 5 * SEC, T0 + 30 * SEC)),
                max_size=60))
def test_owners_in_bulk_decide_as_owner_one_at_a_time(events: list[tuple[str, int]]) -> None:
    # The verdict decides millions of points in bulk: it must be the same rule.
    table = RoutingTable(entries=tuple(
        RoutingEntry(effective_from_ns=T0 + k * 5 * SEC, new_percent=p, shadow=k % 2 == 0)
        for k, p in enumerate(STEPS)))
    entities = [e for e, _ in events]
    times = [t for _, t in events]
    assert table.owners(entities, times) == [table.owner(e, t) for e, t in events]
    assert table.shadow_enabled(times) == [table.shadow_enabled_at(t) for t in times]
    assert table.entries_at(times) == [table.entry_at(t) for t in times]
