"""Home Assistant drops a client that cannot keep up; shutdown closes with 1000."""

from __future__ import annotations

import asyncio
import contextlib

import websockets

from .conftest import authed, make_server, recv, send


async def _stuck_subscriber(ha):
    # max_queue=1 and never reading: the client stops draining its socket, as a stalled
    # ingestion service would.
    ws = await authed(ha, max_queue=1)
    await send(ws, {"id": 1, "type": "subscribe_events"})
    await recv(ws)
    return ws


async def _wait_closed(ha, conn_id: str, timeout: float = 10.0):
    for _ in range(int(timeout / 0.05)):
        closed = [
            r for r in ha.ledger.connections if r.connection == conn_id and r.what == "closed"
        ]
        if closed:
            return closed[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"{conn_id} was not closed in {timeout} s")


async def test_client_is_dropped_at_max_pending_messages(tmp_path):
    async with make_server(tmp_path, max_pending=200, pending_peak=10_000) as ha:
        ws = await _stuck_subscriber(ha)
        conn_id = next(iter(ha.connections))
        for _ in range(40):  # far more than kernel and library buffers hold
            ha.fire(1000)
            await asyncio.sleep(0)
        closed = await _wait_closed(ha, conn_id)
        assert closed.info["reason"] == "backpressure:pending_200"
        assert ha.stats().backpressure_disconnects == 1
        drops = [r for r in ha.ledger.connections if r.what == "backpressure"]
        assert drops and drops[0].info["dropped"] >= 200
        await ws.close()


async def test_client_is_dropped_after_staying_above_the_peak(tmp_path):
    async with make_server(tmp_path, max_pending=1_000_000, pending_peak=100,
                           pending_peak_seconds=0.5) as ha:
        ws = await _stuck_subscriber(ha)
        conn_id = next(iter(ha.connections))
        for _ in range(40):
            ha.fire(1000)
            await asyncio.sleep(0)
        closed = await _wait_closed(ha, conn_id, timeout=5)
        assert closed.info["reason"] == "backpressure:pending_peak_100_for_0.5s"
        await ws.close()


async def test_a_client_that_keeps_up_is_never_dropped(tmp_path):
    async with make_server(tmp_path, max_pending=300, pending_peak=100,
                           pending_peak_seconds=0.3) as ha:
        ws = await authed(ha)
        await send(ws, {"id": 1, "type": "subscribe_events"})
        await recv(ws)
        received = 0
        for _ in range(20):
            ha.fire(50)
            for _ in range(50):
                await recv(ws)
                received += 1
        assert received == 1000
        assert ha.stats().backpressure_disconnects == 0


async def test_shutdown_closes_every_client_with_1000(tmp_path):
    ha = make_server(tmp_path)
    await ha.start()
    clients = [await authed(ha) for _ in range(3)]
    await ha.stop()
    for ws in clients:
        with contextlib.suppress(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 3)
        assert ws.close_code == 1000
