"""Tests of the fault proxy (simulators/faultproxy), over real sockets on 127.0.0.1.

Helpers shared by the test modules: an upstream whose connections the test drives by hand
(so each direction can be timed on its own), an echo server, and a client/server pair
connected through a proxy.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from types import TracebackType

from simulators.faultproxy import Proxy


class Upstream:
    """A TCP server on a free port; each accepted connection is handed to the test."""

    def __init__(self) -> None:
        self._accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _on_accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        await self._accepted.put((reader, writer))

    async def accept(
        self, timeout: float = 5.0
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with asyncio.timeout(timeout):
            return await self._accepted.get()

    async def __aenter__(self) -> Upstream:
        self._server = await asyncio.start_server(self._on_accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()


class Echo:
    """A TCP echo server on a free port."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _echo(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while data := await reader.read(1 << 16):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def __aenter__(self) -> Echo:
        self._server = await asyncio.start_server(self._echo, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()


@dataclass
class Pair:
    """A client connected through ``proxy`` and the upstream's end of that connection."""

    proxy: Proxy
    client_r: asyncio.StreamReader
    client_w: asyncio.StreamWriter
    server_r: asyncio.StreamReader
    server_w: asyncio.StreamWriter

    def close(self) -> None:
        self.client_w.transport.abort()
        self.server_w.transport.abort()


async def connect_pair(proxy: Proxy, upstream: Upstream) -> Pair:
    client_r, client_w = await asyncio.open_connection(proxy.host, proxy.port)
    server_r, server_w = await upstream.accept()
    return Pair(proxy, client_r, client_w, server_r, server_w)


async def timed_read(reader: asyncio.StreamReader, n: int, timeout: float = 5.0) -> float:
    """Seconds until ``n`` bytes have been read."""
    start = time.perf_counter()
    async with asyncio.timeout(timeout):
        await reader.readexactly(n)
    return time.perf_counter() - start


async def read_until_eof(reader: asyncio.StreamReader, timeout: float = 5.0) -> bytes:
    async with asyncio.timeout(timeout):
        return await reader.read()


async def closed_by_peer(reader: asyncio.StreamReader, timeout: float = 5.0) -> bool:
    """True once the peer has closed (EOF, or RST: a socket closed with unread data resets)."""
    try:
        async with asyncio.timeout(timeout):
            while await reader.read(1 << 16):
                pass
    except ConnectionResetError:
        pass
    return True


async def nothing_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """True if no byte (and no EOF) arrives within ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            await reader.read(1)
    except TimeoutError:
        return True
    return False
