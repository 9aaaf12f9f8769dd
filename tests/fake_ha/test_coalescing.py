"""Coalescing as on a real Home Assistant: commands sent back to back are all answered before
the writer runs, so their results leave in one JSON-array frame."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from websockets.asyncio.client import ClientConnection

from simulators.home_assistant.server import FakeHomeAssistant

from .conftest import authed, recv, send


async def _coalescing_client(ha: FakeHomeAssistant) -> ClientConnection:
    ws = await authed(ha, compression=None)
    await send(ws, {"id": 1, "type": "supported_features", "features": {"coalesce_messages": 1}})
    assert await recv(ws) == {"id": 1, "type": "result", "success": True, "result": None}
    return ws


@pytest.mark.parametrize("iterations_apart", [0, 1, 2])
async def test_commands_sent_back_to_back_come_back_in_one_array_frame(
        ha: FakeHomeAssistant, iterations_apart: int) -> None:
    # A second command that reaches the server a loop iteration or two after the first (two
    # TCP segments, as from a client in another process) is answered in the same frame.
    ws = await _coalescing_client(ha)
    await ws.send(orjson.dumps({"id": 2, "type": "subscribe_events",
                                "event_type": "state_changed"}).decode())
    for _ in range(iterations_apart):
        await asyncio.sleep(0)
    await ws.send(orjson.dumps({"id": 3, "type": "get_states"}).decode())
    frame = await recv(ws)
    assert isinstance(frame, list), frame
    assert [m["id"] for m in frame] == [2, 3]
    assert frame[0] == {"id": 2, "type": "result", "success": True, "result": None}
    assert frame[1]["success"] and len(frame[1]["result"]) == len(ha.current_states())


async def test_a_lone_message_still_goes_out_alone_and_at_once(ha: FakeHomeAssistant) -> None:
    ws = await _coalescing_client(ha)
    await send(ws, {"id": 2, "type": "ping"})
    assert await recv(ws, timeout=0.5) == {"id": 2, "type": "pong"}  # not an array of one


async def test_events_fired_while_commands_arrive_share_the_frame(ha: FakeHomeAssistant) -> None:
    ws = await _coalescing_client(ha)
    await send(ws, {"id": 2, "type": "subscribe_events", "event_type": "state_changed"})
    await recv(ws)
    fired = ha.fire(5)
    await send(ws, {"id": 3, "type": "ping"})
    messages = []
    while len(messages) < 6:
        frame = await recv(ws)
        messages += frame if isinstance(frame, list) else [frame]
    assert [m["event"]["data"]["entity_id"] for m in messages[:5]] == [
        c.entity_id for c in fired]
    assert messages[5] == {"id": 3, "type": "pong"}


async def test_without_the_feature_every_message_is_its_own_frame(ha: FakeHomeAssistant) -> None:
    ws = await authed(ha, compression=None)
    await ws.send(orjson.dumps({"id": 2, "type": "subscribe_events"}).decode())
    await asyncio.sleep(0)
    await ws.send(orjson.dumps({"id": 3, "type": "get_states"}).decode())
    assert (await recv(ws))["id"] == 2
    assert (await recv(ws))["id"] == 3
