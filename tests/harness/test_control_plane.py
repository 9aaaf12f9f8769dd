"""The harness's admin-api client waits out an admin-api that is still starting: a refused
connection reached nothing, so it is tried again, for a bounded time, then said plainly."""

from __future__ import annotations

import asyncio
import socket

import httpx
import orjson
import pytest

from harness.errors import ControlPlaneError
from harness.runner.control import ControlPlane

_STATE = orjson.dumps({"new_percent": 0, "shadow": False})


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_STATE), _STATE))
    await writer.drain()
    writer.close()


async def test_a_step_sent_while_admin_api_is_starting_waits_for_it() -> None:
    port = _unused_port()

    async def start_late() -> asyncio.Server:
        await asyncio.sleep(0.8)  # admin-api binding its port a moment after the step
        return await asyncio.start_server(_answer, "127.0.0.1", port)

    starting = asyncio.create_task(start_late())
    async with httpx.AsyncClient() as client:
        state = await ControlPlane(f"http://127.0.0.1:{port}", "t", client).state()
    server = await starting
    server.close()
    await server.wait_closed()
    assert state == {"new_percent": 0, "shadow": False}


async def test_an_admin_api_that_never_comes_is_said_after_the_grace() -> None:
    port = _unused_port()
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with httpx.AsyncClient() as client:
        control = ControlPlane(f"http://127.0.0.1:{port}", "t", client, connect_grace_s=0.5)
        with pytest.raises(ControlPlaneError, match=r"admin-api unreachable .*ConnectError"):
            await control.state()
    assert 0.5 <= loop.time() - started < 5
