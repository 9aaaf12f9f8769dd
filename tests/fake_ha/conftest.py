"""A fake Home Assistant on a free port, and a bare websockets client to talk to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from simulators.home_assistant.fleet import Fleet, FleetSpec
from simulators.home_assistant.ledger import Ledger
from simulators.home_assistant.server import FakeHomeAssistant, ServerConfig

TOKEN = "test-token"


def make_server(tmp_path: Path, **config: Any) -> FakeHomeAssistant:
    cfg = ServerConfig(port=0, token=TOKEN, **config)
    return FakeHomeAssistant(cfg, fleet=Fleet(FleetSpec(entities=60, seed=3)),
                             ledger=Ledger(tmp_path / "ledger.jsonl"))


@pytest.fixture
async def ha(tmp_path: Path) -> AsyncIterator[FakeHomeAssistant]:
    server = make_server(tmp_path, auth_timeout=1.0)
    async with server:
        yield server


async def recv(ws: ClientConnection, timeout: float = 3.0) -> Any:
    return orjson.loads(await asyncio.wait_for(ws.recv(), timeout))


async def send(ws: ClientConnection, msg: Any) -> None:
    await ws.send(orjson.dumps(msg).decode())


async def authed(ha: FakeHomeAssistant, **kwargs: Any) -> ClientConnection:
    ws = await websockets.connect(ha.url, **kwargs)
    assert (await recv(ws))["type"] == "auth_required"
    await send(ws, {"type": "auth", "access_token": TOKEN})
    assert (await recv(ws))["type"] == "auth_ok"
    return ws


async def closed_without_message(ws: ClientConnection, timeout: float = 3.0) -> int | None:
    """Wait for the server to close; fail if it sent anything first. Returns the close code."""
    try:
        extra = await asyncio.wait_for(ws.recv(), timeout)
    except websockets.ConnectionClosed:
        return ws.close_code
    raise AssertionError(f"expected a close with no message, got {extra!r}")
