"""The hot hops' HTTP client speaks httpx's errors whatever aiohttp raised underneath: every
retry decision in the pipeline is written against httpx's exception classes."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import httpx
import pytest

from pipeline.common.transport import nothing_sent, pooled_client

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _serve(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with pooled_client(timeout=httpx.Timeout(0.5)) as c:
        yield c


async def test_an_answer_comes_back_as_an_httpx_response(client: httpx.AsyncClient) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 204 No Content\r\nX-Seen: yes\r\n\r\n")
        await writer.drain()
        writer.close()

    server, url = await _serve(answer)
    async with server:
        response = await client.post(f"{url}/write", content=b"m v=1")
    assert response.status_code == 204
    assert response.headers["x-seen"] == "yes"


async def test_a_refused_connection_is_a_connect_error_not_a_timeout(
        client: httpx.AsyncClient) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(httpx.ConnectError) as err:
        await client.post(f"http://127.0.0.1:{port}/", content=b"x")
    assert nothing_sent(err.value)  # the one failure where the server cannot have acted


async def test_a_server_that_never_answers_is_a_timeout(client: httpx.AsyncClient) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        await asyncio.sleep(5)

    server, url = await _serve(silent)
    async with server:
        with pytest.raises(httpx.TimeoutException) as err:
            await client.post(url, content=b"x")
    assert not nothing_sent(err.value)  # it has the request: in doubt


async def test_a_connection_cut_before_the_answer_is_a_protocol_error(
        client: httpx.AsyncClient) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server, url = await _serve(hang_up)
    async with server:
        with pytest.raises(httpx.RemoteProtocolError) as err:
            await client.post(url, content=b"x")
    assert not nothing_sent(err.value)


def test_what_aiohttp_raised_decides_whether_anything_was_sent() -> None:
    """httpx-aiohttp maps any ClientConnectionError it meets while a body streams (a server
    disconnecting) to ConnectTimeout: the httpx class alone would say "never sent"."""
    def mapped(error: type[httpx.TransportError], cause: BaseException) -> httpx.TransportError:
        exc = error("x")
        exc.__cause__ = cause
        return exc

    assert not nothing_sent(mapped(httpx.ConnectTimeout, aiohttp.ServerDisconnectedError()))
    assert nothing_sent(mapped(httpx.ConnectTimeout, aiohttp.ConnectionTimeoutError()))
    assert not nothing_sent(mapped(httpx.ReadError, aiohttp.ClientPayloadError()))
    assert nothing_sent(httpx.PoolTimeout("x"))  # httpx's own transport: the class says it
    assert not nothing_sent(httpx.ReadTimeout("x"))
