"""The ledger says who ended a connection the fake did not close on purpose.

Evidence for a verdict: a client that closed, a server keepalive that gave up on a client too
busy to answer a ping (FAILURE_MODES.md #13's stalled reader), or a connection that just ended.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import websockets

from simulators.home_assistant.server import FakeHomeAssistant
from tests.fake_ha.conftest import authed, make_server

_UPGRADE = (b"GET /api/websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n")


async def _closed(ha: FakeHomeAssistant, timeout: float = 5.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            closed = [r for r in ha.ledger.connections if r.what == "closed"]
            if closed:
                return dict(closed[-1].info)
            await asyncio.sleep(0.02)


async def _raw_client(ha: FakeHomeAssistant) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A websocket client that completes the handshake, then never reads: no pong, ever."""
    reader, writer = await asyncio.open_connection("127.0.0.1", ha.config.port)
    writer.write(_UPGRADE)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def test_a_client_that_closes_is_named(ha: FakeHomeAssistant) -> None:
    ws = await authed(ha)
    await ws.close()
    info = await _closed(ha)
    assert info["reason"] == "client" and info["code"] == 1000


async def test_a_server_keepalive_timeout_is_the_servers_close(tmp_path: Path) -> None:
    async with make_server(tmp_path, ping_interval=0.2) as ha:
        _, writer = await _raw_client(ha)
        # Ping at 0.2 s, no pong by 0.3 s: the server sends its close frame, then waits for
        # the client to hang up (up to websockets' 10 s close timeout). Hang up at 1 s.
        await asyncio.sleep(1.0)
        writer.close()
        info = await _closed(ha)
    assert info["reason"] == "server"
    assert (info["sent_code"], info["sent_reason"]) == (1011, "keepalive ping timeout")


async def test_a_connection_that_just_ends_is_lost(ha: FakeHomeAssistant) -> None:
    _, writer = await _raw_client(ha)
    writer.transport.abort()  # no close frame: a killed client, a cut cable
    info = await _closed(ha)
    assert info["reason"] == "lost" and info["code"] == 1006


async def test_the_fakes_own_closes_are_not_recorded_twice(ha: FakeHomeAssistant) -> None:
    ws = await authed(ha)
    await ha.drop_connections()
    with contextlib.suppress(websockets.ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 3)
    await asyncio.sleep(0.1)
    closes = [r for r in ha.ledger.connections if r.what == "closed"]
    assert len(closes) <= 1 and all(r.info.get("reason") != "lost" for r in closes)
