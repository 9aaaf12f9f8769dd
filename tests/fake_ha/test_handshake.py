"""The auth phase, point by point against HA_PROTOCOL.md."""

from __future__ import annotations

import asyncio

import pytest
import websockets

from simulators.home_assistant.protocol import HA_VERSION

from .conftest import TOKEN, closed_without_message, recv, send


async def test_server_speaks_first_with_auth_required(ha):
    async with websockets.connect(ha.url) as ws:
        assert await recv(ws) == {"type": "auth_required", "ha_version": HA_VERSION}


async def test_good_token_gets_auth_ok(ha):
    async with websockets.connect(ha.url) as ws:
        await recv(ws)
        await send(ws, {"type": "auth", "access_token": TOKEN})
        assert await recv(ws) == {"type": "auth_ok", "ha_version": HA_VERSION}


async def test_bad_token_gets_auth_invalid_then_close(ha):
    async with websockets.connect(ha.url) as ws:
        await recv(ws)
        await send(ws, {"type": "auth", "access_token": "wrong"})
        assert await recv(ws) == {"type": "auth_invalid",
                                  "message": "Invalid access token or password"}
        await closed_without_message(ws)


@pytest.mark.parametrize("message", [
    {"type": "auth", "access_token": TOKEN, "id": 1},
    {"access_token": TOKEN},
    {"type": "login", "access_token": TOKEN},
    {"type": "auth", "access_token": 12345},
    {"type": "auth", "access_token": TOKEN, "api_password": "x"},
    ["not", "an", "object"],
])
async def test_malformed_auth_message_is_incorrectly_formatted(ha, message):
    async with websockets.connect(ha.url) as ws:
        await recv(ws)
        await send(ws, message)
        reply = await recv(ws)
        assert reply["type"] == "auth_invalid"
        assert reply["message"].startswith("Auth message incorrectly formatted: ")
        await closed_without_message(ws)


async def test_auth_without_a_token_is_well_formed_but_invalid(ha):
    # Both credentials are optional in Home Assistant's schema: no token is a bad token.
    async with websockets.connect(ha.url) as ws:
        await recv(ws)
        await send(ws, {"type": "auth"})
        assert (await recv(ws))["message"] == "Invalid access token or password"
        await closed_without_message(ws)


async def test_invalid_json_during_auth_just_closes(ha):
    async with websockets.connect(ha.url) as ws:
        await recv(ws)
        await ws.send("{not json")
        await closed_without_message(ws)


async def test_binary_frame_during_auth_just_closes(ha):
    async with websockets.connect(ha.url) as ws:
        await recv(ws)
        await ws.send(b'{"type": "auth", "access_token": "test-token"}')
        await closed_without_message(ws)


async def test_no_auth_within_the_timeout_closes(ha):
    # The fixture sets auth_timeout=1.0 (Home Assistant's is 10 s).
    async with websockets.connect(ha.url) as ws:
        await recv(ws)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await closed_without_message(ws, timeout=5)
        assert 0.8 < loop.time() - started < 4


async def test_auth_sent_before_auth_required_arrives_works(ha):
    # The JS client sends auth as soon as the socket opens.
    async with websockets.connect(ha.url) as ws:
        await send(ws, {"type": "auth", "access_token": TOKEN})
        assert (await recv(ws))["type"] == "auth_required"
        assert (await recv(ws))["type"] == "auth_ok"


async def test_other_paths_are_not_found(ha):
    with pytest.raises(websockets.InvalidStatus) as err:
        async with websockets.connect(ha.url.replace("/api/websocket", "/api/other")):
            pass
    assert err.value.response.status_code == 404
