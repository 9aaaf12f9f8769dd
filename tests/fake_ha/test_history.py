"""history/history_during_period: the fake's recorder answers like Home Assistant 2025.4's."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from websockets.asyncio.client import ClientConnection

from simulators.home_assistant.events import StateChange
from simulators.home_assistant.fleet import Fleet, FleetSpec
from simulators.home_assistant.history import History
from simulators.home_assistant.ledger import Ledger
from simulators.home_assistant.server import FakeHomeAssistant, ServerConfig
from simulators.home_assistant.timefmt import iso_from_ns, ns_from_iso

from .conftest import TOKEN, authed, recv, send

HISTORY = "history/history_during_period"
_ids = itertools.count(1)


def epoch(iso: str) -> float:
    return ns_from_iso(iso) // 1000 / 1e6


def server(tmp_path: Path, **config: Any) -> FakeHomeAssistant:
    # Odd events often: attribute-only changes, removals and additions all show up.
    fleet = Fleet(FleetSpec(entities=60, seed=21, p_type_change=0.1, p_add_remove=0.05))
    return FakeHomeAssistant(ServerConfig(port=0, token=TOKEN, **config), fleet=fleet,
                             ledger=Ledger(None))


@pytest.fixture
async def ha(tmp_path: Path) -> AsyncIterator[FakeHomeAssistant]:
    async with server(tmp_path, history_commit_lag=0) as fake:
        yield fake


async def ask(ws: ClientConnection, **fields: Any) -> dict[str, Any]:
    msg_id = next(_ids)
    await send(ws, {"id": msg_id, "type": HISTORY, **fields})
    reply = await recv(ws)
    assert reply["id"] == msg_id and reply["type"] == "result"
    return reply


async def fired_span(ha: FakeHomeAssistant, n: int) -> tuple[str, list[StateChange], str]:
    """Fire ``n`` changes; the ISO times just before and just after them."""
    await asyncio.sleep(0.002)
    before = iso_from_ns(ha._next_time_fired_ns())
    changes = ha.fire(n)
    after = iso_from_ns(ha._next_time_fired_ns() + 1000)
    return before, changes, after


def rows_of(changes: list[StateChange], entity_id: str) -> list[StateChange]:
    return [c for c in changes if c.entity_id == entity_id]


async def test_every_state_each_entity_had_with_full_rows(ha: FakeHomeAssistant) -> None:
    ws = await authed(ha)
    start, changes, end = await fired_span(ha, 400)
    asked = sorted({c.entity_id for c in changes})
    reply = await ask(ws, start_time=start, end_time=end, entity_ids=asked,
                      include_start_time_state=False, significant_changes_only=False)
    result = reply["result"]
    assert reply["success"] and list(result) == asked  # keyed in the order asked
    for entity_id, rows in result.items():
        mine = rows_of(changes, entity_id)
        assert len(rows) == len(mine)
        for row, change in zip(rows, mine, strict=True):
            new = change.new_state
            if new is None:  # a removal: the recorder keeps an empty state
                assert row == {"s": "", "a": {}, "lu": change.time_fired_ns // 1000 / 1e6}
                continue
            assert row["s"] == new["state"] and row["lu"] == epoch(new["last_updated"])
            assert list(row)[:3] == ["s", "a", "lu"]
            if new["last_changed"] != new["last_updated"]:
                assert row["lc"] == epoch(new["last_changed"])
            else:
                assert "lc" not in row
            assert "supported_features" not in row["a"]  # the recorder never stores it
            assert row["a"].items() <= new["attributes"].items()
            assert row["a"]["friendly_name"] == new["attributes"]["friendly_name"]
    assert any("lc" in r for rows in result.values() for r in rows)  # attribute-only changes


async def test_defaults_start_state_and_significant_changes_only(ha: FakeHomeAssistant) -> None:
    ws = await authed(ha)
    start, changes, end = await fired_span(ha, 400)
    firsts: dict[str, StateChange] = {}
    for change in changes:
        firsts.setdefault(change.entity_id, change)
    asked = sorted(e for e, c in firsts.items() if c.old_state is not None)  # there at start
    result = (await ask(ws, start_time=start, end_time=end, entity_ids=asked))["result"]
    attribute_only_dropped = 0
    for entity_id in asked:
        rows, mine = result[entity_id], rows_of(changes, entity_id)
        first = mine[0].old_state
        assert first is not None
        # The state in force at start_time comes first, stamped start_time.
        assert rows[0]["s"] == first["state"] and rows[0]["lu"] == epoch(start)
        assert "lc" not in rows[0]
        domain = entity_id.split(".")[0]
        kept = [c for c in mine if domain in ("climate", "device_tracker") or c.new_state is None
                or c.new_state["last_changed"] == c.new_state["last_updated"]]
        attribute_only_dropped += len(mine) - len(kept)
        assert [r["s"] for r in rows[1:]] == [c.new_state["state"] if c.new_state else ""
                                             for c in kept]
        assert all("lc" not in r for r in rows)
    assert attribute_only_dropped > 10


async def test_minimal_response_and_no_attributes(ha: FakeHomeAssistant) -> None:
    ws = await authed(ha)
    start, changes, end = await fired_span(ha, 400)
    asked = sorted({c.entity_id for c in changes})
    base = {"start_time": start, "end_time": end, "entity_ids": asked,
            "significant_changes_only": False}
    full = (await ask(ws, **base))["result"]
    minimal = (await ask(ws, **base, minimal_response=True))["result"]
    bare = (await ask(ws, **base, no_attributes=True))["result"]
    both = (await ask(ws, **base, minimal_response=True, no_attributes=True))["result"]
    assert list(full) == list(minimal) == list(bare) == list(both)
    for entity_id, rows in full.items():
        if entity_id.startswith("climate."):  # its attributes matter: never minimal
            assert minimal[entity_id] == rows
            continue
        first, *rest = minimal[entity_id]
        assert first == rows[0]
        changed = [r for prev, r in itertools.pairwise(rows) if r["s"] != prev["s"]]
        assert rest == [{"s": r["s"], "lu": r["lu"]} for r in changed]
        # Without attributes the recorder decodes none: "a" is empty, or absent when minimal.
        assert bare[entity_id] == [{**r, "a": {}} for r in rows]
        assert both[entity_id][0] == {k: v for k, v in rows[0].items() if k != "a"}
    assert any(e.startswith("climate.") for e in full)


async def test_unrecorded_attributes_are_not_in_history(ha: FakeHomeAssistant) -> None:
    ws = await authed(ha)
    start, changes, end = await fired_span(ha, 600)
    lights = sorted({c.entity_id for c in changes if c.entity_id.startswith("light.")})
    autos = sorted({c.entity_id for c in changes if c.entity_id.startswith("automation.")})
    assert lights and autos
    result = (await ask(ws, start_time=start, end_time=end, entity_ids=lights + autos,
                        significant_changes_only=False))["result"]
    for entity_id in lights:
        for row in result[entity_id]:
            assert not {"brightness", "color_mode", "supported_color_modes"} & set(row["a"])
    for entity_id in autos:
        for row in result[entity_id]:
            assert not {"current", "last_triggered", "id", "mode"} & set(row["a"])


async def test_unknown_entities_time_bounds_and_the_future(ha: FakeHomeAssistant) -> None:
    ws = await authed(ha)
    start, changes, end = await fired_span(ha, 50)
    known = changes[-1].entity_id
    reply = await ask(ws, start_time=start, entity_ids=[known, "sensor.never_existed"])
    assert list(reply["result"]) == [known]  # an unknown entity is left out; no end_time
    future = iso_from_ns(ns_from_iso(end) + 3_600 * 10**9)
    assert (await ask(ws, start_time=future, entity_ids=[known]))["result"] == {}
    ancient = "1999-01-01T00:00:00+00:00"
    assert (await ask(ws, start_time=ancient, end_time="2000-01-01T00:00:00Z",
                      entity_ids=[known]))["result"] == {}  # nothing recorded that old
    # A naive time is in Home Assistant's own time zone (Europe/Amsterdam here).
    local = datetime.fromisoformat(start).astimezone(ZoneInfo(ha.config.time_zone))
    assert local.utcoffset() != timedelta(0)
    naive = (await ask(ws, start_time=local.replace(tzinfo=None).isoformat(),
                       entity_ids=[known], include_start_time_state=False))["result"]
    aware = (await ask(ws, start_time=start, entity_ids=[known],
                       include_start_time_state=False))["result"]
    assert naive == aware and naive


async def test_rows_are_after_start_time_and_before_end_time(ha: FakeHomeAssistant) -> None:
    ws = await authed(ha)
    _, changes, _ = await fired_span(ha, 60)
    start, end = changes[10], changes[50]
    asked = sorted({c.entity_id for c in changes})
    result = (await ask(ws, start_time=iso_from_ns(start.time_fired_ns),
                        end_time=iso_from_ns(end.time_fired_ns), entity_ids=asked,
                        include_start_time_state=False,
                        significant_changes_only=False))["result"]
    got = sorted((e, r["lu"]) for e, rows in result.items() for r in rows)
    # Both bounds are exclusive: the changes fired at start_time and at end_time are out.
    want = sorted((c.entity_id, c.time_fired_ns // 1000 / 1e6) for c in changes[11:50])
    assert got == want


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"start_time": "2026-01-01T00:00:00+00:00"}, "invalid_format"),  # no entity_ids
        ({"entity_ids": ["sensor.a"]}, "invalid_format"),  # no start_time
        ({"start_time": 5, "entity_ids": ["sensor.a"]}, "invalid_format"),
        ({"start_time": "2026-01-01T00:00:00Z", "entity_ids": "sensor.a"}, "invalid_format"),
        ({"start_time": "2026-01-01T00:00:00Z", "entity_ids": [1]}, "invalid_format"),
        ({"start_time": "2026-01-01T00:00:00Z", "entity_ids": ["sensor.a"],
          "minimal_response": "yes"}, "invalid_format"),
        ({"start_time": "2026-01-01T00:00:00Z", "entity_ids": ["sensor.a"], "limit": 5},
         "invalid_format"),
        ({"start_time": "yesterday", "entity_ids": ["sensor.a"]}, "invalid_start_time"),
        ({"start_time": "2026-01-01T00:00:00Z", "end_time": "soon",
          "entity_ids": ["sensor.a"]}, "invalid_end_time"),
        ({"start_time": "2026-01-01T00:00:00Z", "entity_ids": ["Not An Entity"]},
         "invalid_entity_ids"),
        ({"start_time": "2026-01-01T00:00:00Z", "entity_ids": []}, "unknown_error"),
    ],
)
async def test_bad_requests(ha: FakeHomeAssistant, fields: dict[str, Any],
                           code: str) -> None:
    ws = await authed(ha)
    reply = await ask(ws, **fields)
    assert reply["success"] is False and reply["error"]["code"] == code, reply
    assert (await ask(ws, start_time="2026-01-01T00:00:00Z", entity_ids=["sensor.a"]))[
        "success"]  # the connection carries on


async def test_the_recorder_commits_late(tmp_path: Path) -> None:
    async with server(tmp_path, history_commit_lag=0.3) as ha:
        ws = await authed(ha)
        start, changes, _ = await fired_span(ha, 30)
        asked = sorted({c.entity_id for c in changes})
        query = {"start_time": start, "entity_ids": asked, "include_start_time_state": False,
                 "significant_changes_only": False}
        assert (await ask(ws, **query))["result"] == {}  # not committed yet
        await asyncio.sleep(0.35)
        result = (await ask(ws, **query))["result"]
        assert sum(len(rows) for rows in result.values()) == 30


async def test_history_outlives_connections_and_restarts(ha: FakeHomeAssistant) -> None:
    start, changes, end = await fired_span(ha, 40)
    await ha.restart()  # nobody saw these; the recorder has them
    ws = await authed(ha)
    asked = sorted({c.entity_id for c in changes})
    result = (await ask(ws, start_time=start, end_time=end, entity_ids=asked,
                        include_start_time_state=False,
                        significant_changes_only=False))["result"]
    assert sum(len(rows) for rows in result.values()) == 40


async def test_the_states_at_fleet_start_are_recorded(ha: FakeHomeAssistant) -> None:
    ws = await authed(ha)
    states = ha.current_states()
    oldest = min(s["last_updated"] for s in states)
    result = (await ask(ws, start_time=iso_from_ns(ns_from_iso(oldest) - 1000),
                        entity_ids=[s["entity_id"] for s in states],
                        include_start_time_state=False,
                        significant_changes_only=False))["result"]
    assert {e: [(r["s"], r["lu"]) for r in rows] for e, rows in result.items()} == {
        s["entity_id"]: [(s["state"], epoch(s["last_updated"]))] for s in states}


def test_memory_is_bounded_oldest_first() -> None:
    now = [2_000_000_000 * 10**9]
    history = History(max_states=100, commit_lag=0, clock_ns=lambda: now[0])
    t0 = 1_900_000_000 * 10**9
    for i in range(1000):
        t = t0 + i * 10**6
        iso = iso_from_ns(t)
        history.record(f"sensor.s{i % 7}", {"state": str(i), "attributes": {},
                                            "last_changed": iso, "last_updated": iso}, t)
    assert len(history) == 100
    assert history.oldest_us() == (t0 + 900 * 10**6) // 1000
    kept = [history.rows(f"sensor.s{k}", 0, None, False) for k in range(7)]
    assert sorted(int(r[2]) for found in kept if found for r in found[1]) == list(range(900, 1000))


def test_commit_lag_hides_the_newest_rows() -> None:
    now = [1_900_000_010 * 10**9]
    history = History(commit_lag=1.0, clock_ns=lambda: now[0])
    for seconds_ago in (5, 3, 0.5):
        t = now[0] - int(seconds_ago * 1e9)
        iso = iso_from_ns(t)
        history.record("sensor.a", {"state": str(seconds_ago), "attributes": {},
                                    "last_changed": iso, "last_updated": iso}, t)
    found = history.rows("sensor.a", 0, None, False)
    assert found is not None and [r[2] for r in found[1]] == ["5", "3"]
    now[0] += 10**9
    found = history.rows("sensor.a", 0, None, False)
    assert found is not None and [r[2] for r in found[1]] == ["5", "3", "0.5"]


async def test_schema_errors_are_in_voluptuous_words_as_on_home_assistant(
        ha: FakeHomeAssistant) -> None:
    ws = await authed(ha)
    start = "2026-01-01T00:00:00+00:00"
    reply = await ask(ws, start_time=start)  # what tests/real_ha pins for a real HA 2025.4
    assert reply["error"] == {"code": "invalid_format",
                              "message": "required key not provided @ data['entity_ids']. Got None"}
    reply = await ask(ws, start_time=start, entity_ids=["sensor.a", 7], no_attributes=1)
    assert reply["error"]["message"] == (
        "expected bool for dictionary value @ data['no_attributes']. Got 1\n"
        "expected str @ data['entity_ids'][1]. Got 7")
