"""Commands after auth: id rules, arrays, subscriptions, states, config, ping, coalescing."""

from __future__ import annotations

import asyncio
import re

import orjson
import websockets

from .conftest import authed, closed_without_message, recv, send

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")
ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
STATE_KEYS = ["entity_id", "state", "attributes", "last_changed", "last_reported",
              "last_updated", "context"]


async def test_ping_gets_pong(ha):
    ws = await authed(ha)
    await send(ws, {"id": 1, "type": "ping"})
    assert await recv(ws) == {"id": 1, "type": "pong"}


async def test_ids_must_strictly_increase(ha):
    ws = await authed(ha)
    await send(ws, {"id": 5, "type": "ping"})
    assert await recv(ws) == {"id": 5, "type": "pong"}
    for reused in (5, 4):
        await send(ws, {"id": reused, "type": "ping"})
        assert await recv(ws) == {"id": reused, "type": "result", "success": False, "error": {
            "code": "id_reuse", "message": "Identifier values have to increase."}}
    await send(ws, {"id": 9, "type": "ping"})  # gaps are fine
    assert await recv(ws) == {"id": 9, "type": "pong"}


async def test_unknown_commands_keep_the_id_schema_errors_use_it_up(ha):
    # As measured on Home Assistant 2025.4 (tests/real_ha): its schema errors come after the
    # id was accepted, in voluptuous' own words.
    ws = await authed(ha)
    await send(ws, {"id": 3, "type": "no_such_command"})
    assert (await recv(ws))["error"] == {"code": "unknown_command", "message": "Unknown command."}
    await send(ws, {"id": 3, "type": "subscribe_events", "event_type": 42})
    assert (await recv(ws))["error"] == {
        "code": "invalid_format",
        "message": "expected str for dictionary value @ data['event_type']. Got 42"}
    await send(ws, {"id": 3, "type": "ping"})  # id 3 was used up by the schema error
    assert (await recv(ws))["error"]["code"] == "id_reuse"
    await send(ws, {"id": 4, "type": "ping", "extra": True})  # no schema of its own
    assert (await recv(ws))["error"] == {
        "code": "invalid_format",
        "message": "extra keys not allowed. Got {'id': 4, 'type': 'ping', 'extra': True}"}
    await send(ws, {"id": 5, "type": "unsubscribe_events", "x": 1})  # every error, sorted
    assert (await recv(ws))["error"]["message"] == (
        "extra keys not allowed @ data['x']. Got 1\n"
        "required key not provided @ data['subscription']. Got None")


async def test_malformed_commands_are_invalid_format_echoing_whatever_id_they_had(ha):
    ws = await authed(ha)
    cases = [({"type": "ping"}, None), ({"id": "7", "type": "ping"}, "7"), ({"id": 7}, 7),
             ({"id": True, "type": "ping"}, True), ({"id": 0, "type": "ping"}, 0), (42, 0)]
    for message, echoed in cases:
        await send(ws, message)
        assert await recv(ws) == {"id": echoed, "type": "result", "success": False, "error": {
            "code": "invalid_format", "message": "Message incorrectly formatted."}}, message


async def test_an_array_of_commands_in_one_frame(ha):
    ws = await authed(ha)
    await send(ws, [{"id": 1, "type": "ping"}, {"id": 2, "type": "get_config"},
                    {"id": 2, "type": "ping"}])
    assert await recv(ws) == {"id": 1, "type": "pong"}
    config = await recv(ws)
    assert config["id"] == 2 and config["success"] is True
    assert (await recv(ws))["error"]["code"] == "id_reuse"


async def test_get_config(ha):
    ws = await authed(ha)
    await send(ws, {"id": 1, "type": "get_config"})
    config = (await recv(ws))["result"]
    for key in ("location_name", "latitude", "longitude", "elevation", "unit_system",
                "time_zone", "version", "components"):
        assert key in config
    assert config["state"] == "RUNNING"
    assert "sensor" in config["components"]


async def test_get_states_returns_every_entity_in_home_assistants_shape(ha):
    ws = await authed(ha)
    await send(ws, {"id": 1, "type": "get_states"})
    states = (await recv(ws))["result"]
    assert len(states) == len(ha.fleet.entity_ids()) == 60
    for state in states:
        assert list(state) == STATE_KEYS
        assert isinstance(state["state"], str)
        for key in ("last_changed", "last_reported", "last_updated"):
            assert ISO.match(state[key]), state[key]
        assert ULID.match(state["context"]["id"])


async def test_subscribe_then_events_with_exact_wire_shape(ha):
    ws = await authed(ha)
    await send(ws, {"id": 1, "type": "subscribe_events", "event_type": "state_changed"})
    assert await recv(ws) == {"id": 1, "type": "result", "success": True, "result": None}
    changes = ha.fire(30)
    for change in changes:
        raw = await asyncio.wait_for(ws.recv(), 3)
        # Home Assistant writes "type" and "event" first and the subscription id last.
        assert raw.startswith('{"type":"event","event":{"event_type":"state_changed","data":'
                              '{"entity_id":'), raw[:80]
        assert raw.endswith(',"id":1}')
        frame = orjson.loads(raw)
        event = frame["event"]
        assert list(event) == ["event_type", "data", "origin", "time_fired", "context"]
        assert list(event["data"]) == ["entity_id", "old_state", "new_state"]
        assert event["data"]["entity_id"] == change.entity_id
        assert event["origin"] == "LOCAL"
        assert ISO.match(event["time_fired"])
        assert list(event["context"]) == ["id", "parent_id", "user_id"]
        assert ULID.match(event["context"]["id"]) and event["context"]["id"] == change.context_id
        for state in (event["data"]["old_state"], event["data"]["new_state"]):
            if state is not None:
                assert list(state) == STATE_KEYS
        if event["data"]["new_state"] is not None:
            assert event["context"] == event["data"]["new_state"]["context"]


async def test_time_fired_is_unique_and_increasing(ha):
    ws = await authed(ha)
    await send(ws, {"id": 1, "type": "subscribe_events"})
    await recv(ws)
    ha.fire(500)  # fired in one go: same microsecond on the clock
    times = [(await recv(ws))["event"]["time_fired"] for _ in range(500)]
    assert times == sorted(times) and len(set(times)) == 500


async def test_subscribe_without_event_type_means_all_events(ha):
    ws = await authed(ha)
    await send(ws, {"id": 1, "type": "subscribe_events"})
    await recv(ws)
    ha.fire(3)
    assert [(await recv(ws))["event"]["event_type"] for _ in range(3)] == ["state_changed"] * 3


async def test_other_event_types_are_not_sent_to_a_typed_subscription(ha):
    ws = await authed(ha)
    await send(ws, {"id": 1, "type": "subscribe_events", "event_type": "call_service"})
    await recv(ws)
    ha.fire(5)
    await send(ws, {"id": 2, "type": "ping"})
    assert await recv(ws) == {"id": 2, "type": "pong"}  # nothing was queued before the pong


async def test_unsubscribe(ha):
    ws = await authed(ha)
    await send(ws, {"id": 1, "type": "subscribe_events", "event_type": "state_changed"})
    await recv(ws)
    await send(ws, {"id": 2, "type": "unsubscribe_events", "subscription": 1})
    assert await recv(ws) == {"id": 2, "type": "result", "success": True, "result": None}
    ha.fire(5)
    await send(ws, {"id": 3, "type": "unsubscribe_events", "subscription": 1})
    assert await recv(ws) == {"id": 3, "type": "result", "success": False, "error": {
        "code": "not_found", "message": "Subscription not found."}}


async def test_coalesce_messages_sends_arrays_when_more_than_one_is_queued(ha):
    ws = await authed(ha)
    await send(ws, [{"id": 1, "type": "supported_features", "features": {"coalesce_messages": 1}},
                    {"id": 2, "type": "subscribe_events", "event_type": "state_changed"}])
    first = await recv(ws)
    replies = first if isinstance(first, list) else [first, await recv(ws)]
    assert [r["id"] for r in replies[:2]] == [1, 2]
    ha.fire(200)
    events, frames = [], 0
    while len(events) < 200:
        frame = await recv(ws)
        frames += 1
        events.extend(frame if isinstance(frame, list) else [frame])
    assert all(e["type"] == "event" for e in events)
    assert frames < 200  # queued messages travelled together
    # Every event once: an event is its entity and its moment (contexts are shared by causes).
    keys = [(e["event"]["data"]["entity_id"], e["event"]["time_fired"]) for e in events]
    assert len(set(keys)) == 200


async def test_without_coalescing_every_message_is_its_own_frame(ha):
    ws = await authed(ha)
    await send(ws, {"id": 1, "type": "subscribe_events"})
    await recv(ws)
    ha.fire(100)
    for _ in range(100):
        assert isinstance(await recv(ws), dict)


async def test_subscribe_entities_initial_state_then_diffs(tmp_path):
    from simulators.home_assistant.fleet import Fleet, FleetSpec
    from simulators.home_assistant.ledger import Ledger
    from simulators.home_assistant.server import FakeHomeAssistant, ServerConfig

    from .conftest import TOKEN

    fleet = Fleet(FleetSpec(entities=40, seed=5, p_add_remove=0.2))
    async with FakeHomeAssistant(ServerConfig(port=0, token=TOKEN), fleet=fleet,
                                 ledger=Ledger(None)) as ha:
        ws = await authed(ha)
        await send(ws, {"id": 1, "type": "subscribe_entities"})
        assert (await recv(ws)) == {"id": 1, "type": "result", "success": True, "result": None}
        initial = await recv(ws)
        assert initial["id"] == 1 and initial["type"] == "event"
        known = initial["event"]["a"]
        assert set(known) == set(fleet.entity_ids())
        for compressed in known.values():
            assert {"s", "a", "c", "lc"} <= set(compressed)
            assert isinstance(compressed["lc"], float)
        kinds = set()
        for change in ha.fire(200):
            event = (await recv(ws))["event"]
            if change.new_state is None:
                assert event == {"r": [change.entity_id]}
                kinds.add("r")
            elif change.old_state is None:
                assert event["a"][change.entity_id]["s"] == change.new_state["state"]
                kinds.add("a")
            else:
                diff = event["c"][change.entity_id]
                assert "+" in diff
                if change.old_state["state"] != change.new_state["state"]:
                    assert diff["+"]["s"] == change.new_state["state"]
                kinds.add("c")
        assert kinds == {"a", "c", "r"}


async def test_subscribe_entities_filter(ha):
    ws = await authed(ha)
    wanted = ha.fleet.entity_ids()[:3]
    await send(ws, {"id": 1, "type": "subscribe_entities", "entity_ids": wanted})
    await recv(ws)
    assert set((await recv(ws))["event"]["a"]) == set(wanted)


async def test_invalid_json_after_auth_closes_without_error(ha):
    ws = await authed(ha)
    await ws.send("[{broken")
    await closed_without_message(ws)


async def test_binary_frames_after_auth(ha):
    # As on Home Assistant 2025.4 (tests/real_ha): a binary frame is for the handler its first
    # byte names; one for no handler is dropped and the connection reads on, an empty one ends it.
    ws = await authed(ha)
    await ws.send(b'{"id": 1, "type": "ping"}')
    await send(ws, {"id": 2, "type": "ping"})
    assert await recv(ws) == {"id": 2, "type": "pong"}  # nothing came for the binary frame
    await ws.send(b"")
    await closed_without_message(ws)


async def test_frames_over_4_mib_are_refused(ha):
    ws = await authed(ha)
    await ws.send('{"id": 1, "type": "ping", "pad": "' + "x" * (4 * 1024 * 1024) + '"}')
    try:
        await asyncio.wait_for(ws.recv(), 3)
        raise AssertionError("an oversized frame was accepted")
    except websockets.ConnectionClosed:
        assert ws.close_code == 1009  # message too big
