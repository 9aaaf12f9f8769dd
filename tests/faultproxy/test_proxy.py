"""Proxies without toxics: bytes intact, down/up, counters, and real protocols through them."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve

from simulators.faultproxy import FaultProxy, FaultProxyError, Proxy
from tests.faultproxy import (
    Echo,
    Upstream,
    closed_by_peer,
    connect_pair,
    read_until_eof,
    timed_read,
)


@pytest.fixture
async def fp() -> AsyncIterator[FaultProxy]:
    async with FaultProxy(seed=3) as f:
        yield f


@pytest.fixture
async def echo() -> AsyncIterator[Echo]:
    async with Echo() as e:
        yield e


async def roundtrip(proxy: Proxy, payload: bytes = b"ping") -> bytes:
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    try:
        writer.write(payload)
        async with asyncio.timeout(5):
            return await reader.readexactly(len(payload))
    finally:
        writer.close()


async def test_port_zero_picks_a_free_port_and_reports_it(fp: FaultProxy, echo: Echo) -> None:
    proxy = await fp.create("p", listen="127.0.0.1:0", upstream=echo.address)
    assert proxy.port > 0
    assert proxy.listen == f"127.0.0.1:{proxy.port}"
    assert proxy.to_json()["listen"] == proxy.listen
    assert await roundtrip(proxy) == b"ping"


async def test_large_transfers_arrive_intact_both_ways(fp: FaultProxy, echo: Echo) -> None:
    proxy = await fp.create("big", upstream=echo.address)
    payload = os.urandom(8 * 1024 * 1024)
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)

    async def send() -> None:
        writer.write(payload)
        await writer.drain()
        writer.write_eof()

    sender = asyncio.create_task(send())
    got = await read_until_eof(reader, timeout=20)
    await sender
    writer.close()
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
    stats = proxy.to_json()["stats"]
    assert stats["upstream"]["bytes_received"] == len(payload)
    assert stats["upstream"]["bytes_sent"] == len(payload)
    assert stats["downstream"]["bytes_sent"] == len(payload)


async def test_counts_connections_and_bytes(fp: FaultProxy, echo: Echo) -> None:
    proxy = await fp.create("count", upstream=echo.address)
    for _ in range(3):
        await roundtrip(proxy, b"12345")
    async with asyncio.timeout(2):
        while proxy.connections:
            await asyncio.sleep(0.01)
    stats = proxy.to_json()["stats"]
    assert stats["connections_total"] == 3
    assert stats["connections_active"] == 0
    assert stats["upstream"] == {"bytes_received": 15, "bytes_sent": 15}
    assert stats["downstream"] == {"bytes_received": 15, "bytes_sent": 15}


async def test_a_half_closed_request_still_gets_its_answer(fp: FaultProxy) -> None:
    async with Upstream() as upstream:
        proxy = await fp.create("half", upstream=upstream.address)
        pair = await connect_pair(proxy, upstream)
        pair.client_w.write(b"request")
        pair.client_w.write_eof()
        assert await read_until_eof(pair.server_r) == b"request"
        pair.server_w.write(b"answer")
        pair.server_w.close()
        assert await read_until_eof(pair.client_r) == b"answer"
        async with asyncio.timeout(2):
            while proxy.connections:
                await asyncio.sleep(0.01)
        pair.close()


async def test_disable_closes_live_connections_and_refuses_new_ones(
    fp: FaultProxy, echo: Echo
) -> None:
    proxy = await fp.create("down", upstream=echo.address)
    port = proxy.port
    reader, writer = await asyncio.open_connection(proxy.host, port)
    writer.write(b"hi")
    assert await reader.readexactly(2) == b"hi"

    await proxy.disable()
    assert not proxy.enabled
    assert await closed_by_peer(reader, timeout=2)
    writer.close()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(proxy.host, port)

    await proxy.enable()
    assert proxy.enabled and proxy.port == port
    assert await roundtrip(proxy) == b"ping"


async def test_an_unreachable_upstream_closes_the_client(fp: FaultProxy) -> None:
    async with Upstream() as gone:
        address = gone.address
    proxy = await fp.create("nowhere", upstream=address)
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    writer.write(b"anyone?")  # unread when the proxy gives up: the close is an RST
    assert await closed_by_peer(reader)
    writer.close()


async def test_update_upstream_and_delete(fp: FaultProxy, echo: Echo) -> None:
    async with Upstream() as first:
        proxy = await fp.create("moving", upstream=first.address)
        pair = await connect_pair(proxy, first)
        await proxy.update(upstream=echo.address)  # restarts: live connections dropped
        assert await read_until_eof(pair.client_r) == b""
        pair.close()
        assert await roundtrip(proxy) == b"ping"
    port = proxy.port
    await fp.delete("moving")
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
    with pytest.raises(FaultProxyError) as err:
        fp.get("moving")
    assert err.value.status == 404


async def test_create_twice_is_a_conflict(fp: FaultProxy, echo: Echo) -> None:
    await fp.create("once", upstream=echo.address)
    with pytest.raises(FaultProxyError) as err:
        await fp.create("once", upstream=echo.address)
    assert err.value.status == 409


async def test_toxics_are_kept_while_down(fp: FaultProxy) -> None:
    async with Upstream() as upstream:
        proxy = await fp.create("kept", upstream=upstream.address)
        proxy.add_toxic("latency", latency=100)
        await proxy.disable()
        await proxy.enable()
        pair = await connect_pair(proxy, upstream)
        pair.server_w.write(b"x")
        assert await timed_read(pair.client_r, 1) >= 0.095
        pair.close()


# --------------------------------------------------------------------------- real protocols


async def test_websocket_through_the_proxy(fp: FaultProxy) -> None:
    async def echo_ws(ws: ServerConnection) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in ws:
                await ws.send(message)

    async with ws_serve(echo_ws, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        proxy = await fp.create("ws", upstream=f"127.0.0.1:{port}")
        async with ws_connect(f"ws://{proxy.listen}/api/websocket") as ws:
            for i in range(50):
                await ws.send(f"event {i}")
                assert await ws.recv() == f"event {i}"
            big = os.urandom(512 * 1024)
            await ws.send(big)
            assert await ws.recv() == big
            proxy.add_toxic("latency", latency=80)
            loop = asyncio.get_running_loop()
            start = loop.time()
            await ws.send("slow")
            assert await ws.recv() == "slow"
            assert loop.time() - start >= 0.075
            await proxy.disable()  # the harness's "network drop": the client sees it
            with pytest.raises(websockets.ConnectionClosed):
                async with asyncio.timeout(5):
                    await ws.recv()


async def test_http_through_the_proxy_with_httpx() -> None:
    async with FaultProxy(api_port=0) as fp:  # its own API is the HTTP server behind the proxy
        assert fp.api_url is not None
        api = fp.api_url.removeprefix("http://")
        proxy = await fp.create("http", upstream=api)
        async with httpx.AsyncClient(base_url=f"http://{proxy.listen}", timeout=5) as client:
            for _ in range(20):
                r = await client.get("/version")
                assert r.status_code == 200
                assert r.json()["version"].startswith("2.")
            r = await client.get("/proxies/http")
            assert r.json()["stats"]["connections_total"] == 1  # keep-alive: one connection
            proxy.add_toxic("limit_data", bytes=30)
            with pytest.raises(httpx.HTTPError):
                await client.get("/proxies")
