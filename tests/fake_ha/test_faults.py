"""The faults the harness injects into the fake Home Assistant."""

from __future__ import annotations

import asyncio

import orjson
import pytest
import websockets

from .conftest import TOKEN, authed, recv, send


async def _closed_code(ws) -> int | None:
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 3)
    except websockets.ConnectionClosed:
        return ws.close_code


async def test_drop_connections_cleanly(ha):
    clients = [await authed(ha) for _ in range(2)]
    assert await ha.drop_connections() == 2
    assert [await _closed_code(ws) for ws in clients] == [1000, 1000]


async def test_drop_connections_abruptly(ha):
    ws = await authed(ha)
    await ha.drop_connections(abort=True)
    assert await _closed_code(ws) == 1006  # no close frame: the TCP connection just died


async def test_refuse_new_connections_for_a_while(ha):
    live = await authed(ha)
    await ha.refuse_connections(1.0)
    with pytest.raises(OSError):
        await websockets.connect(ha.url, open_timeout=2)
    await asyncio.sleep(1.3)
    again = await authed(ha)
    await send(live, {"id": 1, "type": "ping"})  # the live connection was never touched
    assert await recv(live) == {"id": 1, "type": "pong"}
    await again.close()


async def test_restart_on_the_same_port(ha):
    ws = await authed(ha)
    port = ha.port
    await ha.restart(downtime=0.2)
    assert await _closed_code(ws) == 1000
    assert ha.port == port
    again = await authed(ha)
    await send(again, {"id": 1, "type": "subscribe_events"})
    await recv(again)
    ha.fire(2)
    assert (await recv(again))["type"] == "event"


async def test_stall_stops_answering_without_closing(ha):
    ws = await authed(ha)
    await send(ws, {"id": 1, "type": "subscribe_events"})
    await recv(ws)
    ha.stall(1.0)
    await send(ws, {"id": 2, "type": "ping"})
    with pytest.raises(TimeoutError):
        await recv(ws, timeout=0.6)
    assert await recv(ws, timeout=2) == {"id": 2, "type": "pong"}  # after the stall
    assert ws.close_code is None


async def test_stall_fires_nothing_while_stalled(tmp_path):
    from simulators.home_assistant.load import parse_profile

    from .conftest import make_server

    async with make_server(tmp_path, auth_timeout=1.0) as ha:
        ha.set_profile(parse_profile("200/s"))
        await asyncio.sleep(0.5)
        ha.stall(1.0)
        before = ha.fired
        await asyncio.sleep(0.8)
        assert ha.fired == before
        await asyncio.sleep(0.7)
        # resumed, and what would have fired during the stall was not caught up in a burst
        assert 0 < ha.fired - before < 200 * 0.5 + 40


@pytest.mark.parametrize("kind", ["truncated", "not_json", "unknown_type"])
async def test_malformed_frame(ha, kind):
    ws = await authed(ha)
    assert ha.send_malformed_frame(kind) == 1
    raw = await asyncio.wait_for(ws.recv(), 3)
    if kind == "unknown_type":
        assert orjson.loads(raw)["type"] == "mystery_message"
    else:
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(raw)


async def test_malformed_frame_kind_is_checked(ha):
    with pytest.raises(ValueError, match="expected one of truncated"):
        ha.send_malformed_frame("nonsense")


async def test_revoke_token_closes_live_sockets_and_refuses_the_old_token(ha):
    ws = await authed(ha)
    new = await ha.revoke_token()
    assert new != TOKEN
    assert await _closed_code(ws) == 1000
    async with websockets.connect(ha.url) as again:
        await recv(again)
        await send(again, {"type": "auth", "access_token": TOKEN})
        assert (await recv(again))["type"] == "auth_invalid"
    async with websockets.connect(ha.url) as fresh:
        await recv(fresh)
        await send(fresh, {"type": "auth", "access_token": new})
        assert (await recv(fresh))["type"] == "auth_ok"


async def test_slow_down_delays_every_frame(ha):
    ws = await authed(ha)
    await send(ws, {"id": 1, "type": "subscribe_events"})
    await recv(ws)
    ha.slow_down(0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    ha.fire(10)
    for _ in range(10):
        await recv(ws)
    assert loop.time() - started >= 0.45
    ha.slow_down(0)
    started = loop.time()
    ha.fire(10)
    for _ in range(10):
        await recv(ws)
    assert loop.time() - started < 0.45


async def test_a_malformed_frame_never_breaks_coalesced_events(ha):
    ws = await authed(ha)
    await send(ws, [{"id": 1, "type": "supported_features", "features": {"coalesce_messages": 1}},
                    {"id": 2, "type": "subscribe_events"}])
    seen = 0
    while seen < 2:
        msg = await recv(ws)
        seen += len(msg) if isinstance(msg, list) else 1
    ha.fire(20)
    ha.send_malformed_frame("truncated")
    ha.fire(20)
    events, broken = 0, 0
    while events < 40:
        raw = await asyncio.wait_for(ws.recv(), 3)
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError:
            broken += 1
            continue
        events += len(msg) if isinstance(msg, list) else 1
    assert (events, broken) == (40, 1)
