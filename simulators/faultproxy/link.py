"""Per accepted connection: an upstream connection and two links (what proxy.py's listener makes).

A :class:`Link` carries one direction (``upstream`` = client -> server, ``downstream`` =
server -> client). With no toxic affecting it, a link writes each read straight into the other
socket from the protocol callback: no queue, no task, no timer (asyncio's transports read up
to 256 KiB at a time and set TCP_NODELAY). With toxics it queues chunks (stamped with their
arrival time) for a pump task that passes them through the toxics' stages in order. Flow
control both ways: when the destination's write buffer is full, or too much waits in the
queue, the link stops reading its source, so the sender feels it (the bandwidth toxic slows
the sender down, as a slow line would).

A clean end of stream from one peer (FIN) is passed on as a half-close, so a request sent
with ``shutdown(SHUT_WR)`` still gets its answer; the connection is closed when both
directions have ended, or one peer has gone entirely. (Toxiproxy closes the whole connection
at the first FIN; the difference only shows for clients that half-close.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import struct
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from simulators.faultproxy.errors import split_address
from simulators.faultproxy.toxics import Chunk, Stage, Stream, Toxic, stage_class

log = logging.getLogger("simulators.faultproxy.proxy")  # its name before the split

#: bytes queued in a link (toxics active) before it stops reading its source
QUEUE_HIGH = 4 * 1024 * 1024
QUEUE_LOW = 1024 * 1024
#: how long to connect to the upstream before giving up on the client
CONNECT_TIMEOUT = 10.0
#: after a graceful close, how long a peer that reads nothing may keep the socket
CLOSE_GRACE = 5.0




class ProxyView(Protocol):
    """What a connection needs of its proxy (proxy.py's :class:`Proxy`; it imports this
    module, so this one names only the attributes it reads)."""

    name: str
    upstream: str
    rng: random.Random
    toxics: dict[str, Toxic]
    connections: set[Connection]
    stats: ProxyStats


@dataclass(slots=True)
class DirectionStats:
    received: int = 0  # bytes read from the source peer
    sent: int = 0  # bytes handed to the destination peer


@dataclass(slots=True)
class ProxyStats:
    connections_total: int = 0
    upstream: DirectionStats = field(default_factory=DirectionStats)
    downstream: DirectionStats = field(default_factory=DirectionStats)

    def direction(self, stream: Stream) -> DirectionStats:
        return self.upstream if stream == "upstream" else self.downstream


# --------------------------------------------------------------------------- sockets


class _Side(asyncio.Protocol):
    """One socket of a connection: what it reads feeds ``out``; ``into`` writes to it."""

    def __init__(self, conn: Connection | None) -> None:
        self.conn = conn
        self.transport: asyncio.Transport | None = None
        self.out: Link | None = None  # the link reading from this socket
        self.into: Link | None = None  # the link writing to this socket
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.out is not None
        self.out.feed(data)

    def eof_received(self) -> bool:
        assert self.out is not None
        self.out.feed_eof()
        return True  # keep our write half open: the other direction may still have data

    def pause_writing(self) -> None:
        if self.into is not None:
            self.into.output_paused()

    def resume_writing(self) -> None:
        if self.into is not None:
            self.into.output_resumed()

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002 - asyncio.Protocol's
        self.lost = True
        if self.conn is not None:
            self.conn.side_lost(self)


class _ClientSide(_Side):
    def __init__(self, proxy: ProxyView) -> None:
        super().__init__(None)
        self.proxy = proxy

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.conn = Connection(self.proxy, self)


# --------------------------------------------------------------------------- links


class Link:
    """One direction of one connection, with the stages of the toxics of that direction."""

    def __init__(
        self, conn: Connection, stream: Stream, source: _Side, dest: _Side, stats: DirectionStats
    ) -> None:
        self.conn = conn
        self.stream = stream
        self.source = source
        self.dest = dest
        self.stats = stats
        self.stages: dict[str, Stage] = {}
        self._active: tuple[Stage, ...] = ()
        self._queue: deque[Chunk | None] = deque()  # None: end of stream
        self._queued = 0
        self._pump: asyncio.Task[None] | None = None
        self._eof = False  # end of stream read from the source
        self.done = False  # end of stream passed on, or nowhere left to write
        self._read_pauses: set[str] = set()
        self._writable: asyncio.Event | None = None  # while dest's buffer is full: set on drain
        source.out = self
        dest.into = self

    # -- toxics

    def attach(self, toxic: Toxic) -> None:
        stage = stage_class(toxic.type)(toxic, self, self.conn.proxy.rng)
        self.stages[toxic.name] = stage
        if stage.roll():
            stage.activate()
        self._refresh()

    def update(self, toxic: Toxic) -> None:
        stage = self.stages.get(toxic.name)
        if stage is not None:
            stage.update(toxic)
            self._refresh()

    def detach(self, name: str) -> None:
        stage = self.stages.pop(name, None)
        if stage is not None:
            stage.remove()
            self._refresh()

    def _refresh(self) -> None:
        self._active = tuple(s for s in self.stages.values() if s.active)

    # -- LinkControl, for the stages

    def close_connection(self) -> None:
        self.conn.close()

    def reset_connection(self) -> None:
        self.conn.reset()

    # -- reading

    def feed(self, data: bytes) -> None:
        self.stats.received += len(data)
        # The zero-toxic path; data read before the upstream is connected (seen on docker's
        # bridge, despite the read pause) waits in the queue for the pump instead.
        if self._pump is None and not self._active and self.dest.transport is not None:
            if not self.done:
                self.dest.transport.write(data)
                self.stats.sent += len(data)
            return
        self._queue.append(Chunk(data, asyncio.get_running_loop().time()))
        self._queued += len(data)
        if self._queued > QUEUE_HIGH:
            self.pause_source("queue")
        self._kick()

    def feed_eof(self) -> None:
        if self._eof:
            return
        self._eof = True
        if self._pump is None and not self._active:
            self._finish()
            return
        self._queue.append(None)
        self._kick()

    def _kick(self) -> None:
        if self._pump is None and not self.done:
            self._pump = asyncio.get_running_loop().create_task(
                self._run(), name=f"faultproxy-{self.conn.proxy.name}-{self.stream}"
            )

    async def _run(self) -> None:
        try:
            while self._queue and not self.done:
                item = self._queue.popleft()
                stages = self._active
                if item is None:
                    await self._through_eof(stages, 0)
                    continue
                self._queued -= len(item.data)
                if self._queued <= QUEUE_LOW:
                    self.resume_source("queue")
                await self._through(stages, 0, item)
        except asyncio.CancelledError:
            pass
        except Exception:  # a bug in a stage: lose this connection, not the proxy
            log.exception("faultproxy %s: %s link failed", self.conn.proxy.name, self.stream)
            self.conn.reset()
        finally:
            self._pump = None

    async def _through(self, stages: tuple[Stage, ...], i: int, chunk: Chunk) -> None:
        while i < len(stages) and not stages[i].live:
            i += 1
        if i == len(stages):
            await self._send(chunk)
            return
        await stages[i].data(chunk, lambda c: self._through(stages, i + 1, c))

    async def _through_eof(self, stages: tuple[Stage, ...], i: int) -> None:
        while i < len(stages) and not stages[i].live:
            i += 1
        if i == len(stages):
            self._finish()
            return
        await stages[i].eof(lambda: self._through_eof(stages, i + 1))

    # -- writing

    async def _send(self, chunk: Chunk) -> None:
        if self._writable is not None:
            await self._writable.wait()
        if self.dest.transport is None and not self.done:
            await self.conn.connected.wait()
        transport = self.dest.transport
        if self.done or not chunk.data or transport is None:
            return
        transport.write(chunk.data)
        self.stats.sent += len(chunk.data)

    def _finish(self) -> None:
        if self.done:
            return
        self.done = True
        transport = self.dest.transport
        if transport is not None and not transport.is_closing() and transport.can_write_eof():
            with contextlib.suppress(OSError):
                transport.write_eof()
        self.conn.link_done()

    def abandon(self) -> None:
        """The destination is gone: nothing more can be written."""
        self._queue.clear()
        self._queued = 0
        self.resume_source("queue")
        if not self.done:
            self.done = True
            self.conn.link_done()

    def output_paused(self) -> None:
        self._writable = asyncio.Event()
        self.pause_source("dest")

    def output_resumed(self) -> None:
        if self._writable is not None:
            self._writable.set()
            self._writable = None
        self.resume_source("dest")

    def pause_source(self, reason: str) -> None:
        if not self._read_pauses and self.source.transport is not None:
            self.source.transport.pause_reading()
        self._read_pauses.add(reason)

    def resume_source(self, reason: str) -> None:
        if reason not in self._read_pauses:
            return
        self._read_pauses.discard(reason)
        if not self._read_pauses and self.source.transport is not None:
            self.source.transport.resume_reading()

    def shutdown(self) -> None:
        """The connection is closing: stop the pump and the stages' timers."""
        self.done = True
        self._queue.clear()
        for stage in self.stages.values():
            stage.close()
        if self._writable is not None:
            self._writable.set()
        pump = self._pump
        if pump is not None and pump is not asyncio.current_task():
            pump.cancel()


# --------------------------------------------------------------------------- connections


class Connection:
    """A client accepted by a proxy, its upstream connection, and the two links."""

    def __init__(self, proxy: ProxyView, client: _ClientSide) -> None:
        self.proxy = proxy
        self.client = client
        self.server = _Side(self)
        self.closed = False
        self.connected = asyncio.Event()  # the upstream side is open
        self.links: dict[Stream, Link] = {
            "upstream": Link(self, "upstream", client, self.server, proxy.stats.upstream),
            "downstream": Link(self, "downstream", self.server, client, proxy.stats.downstream),
        }
        self._grace: asyncio.TimerHandle | None = None
        proxy.connections.add(self)
        proxy.stats.connections_total += 1
        self.links["upstream"].pause_source("connecting")
        for toxic in proxy.toxics.values():
            self.links[toxic.stream].attach(toxic)
        loop = asyncio.get_running_loop()
        self._connecting: asyncio.Task[None] | None = loop.create_task(
            self._connect(), name=f"faultproxy-{proxy.name}-connect"
        )

    async def _connect(self) -> None:
        host, port = split_address(self.proxy.upstream, "upstream")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await loop.create_connection(lambda: self.server, host, port)
        except (OSError, TimeoutError):
            self.close()  # Toxiproxy does the same: the client sees its connection closed
            return
        finally:
            self._connecting = None
        if self.closed:
            self._abort(self.server)
            return
        self.connected.set()
        self.links["upstream"].resume_source("connecting")

    def link_done(self) -> None:
        if all(link.done for link in self.links.values()):
            self.close()

    def side_lost(self, side: _Side) -> None:
        if self.closed:
            if self.client.lost and self.server.lost and self._grace is not None:
                self._grace.cancel()
            return
        if side is self.client:
            self.links["downstream"].abandon()
            self.links["upstream"].feed_eof()
        else:
            self.links["upstream"].abandon()
            self.links["downstream"].feed_eof()

    def _forget(self) -> bool:
        if self.closed:
            return False
        self.closed = True
        self.proxy.connections.discard(self)
        if self._connecting is not None and self._connecting is not asyncio.current_task():
            self._connecting.cancel()
        for link in self.links.values():
            link.shutdown()
        return True

    def close(self) -> None:
        """Graceful: what was written is delivered, then FIN; a peer that reads nothing for
        ``CLOSE_GRACE`` s is aborted."""
        if not self._forget():
            return
        for side in (self.client, self.server):
            if side.transport is not None:
                side.transport.close()
        if not (self.client.lost and self.server.lost):
            loop = asyncio.get_running_loop()
            self._grace = loop.call_later(CLOSE_GRACE, self._abort_all)

    def reset(self) -> None:
        """SO_LINGER 0 and close: each peer gets an RST."""
        self._forget()
        for side in (self.client, self.server):
            sock = side.transport.get_extra_info("socket") if side.transport else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._abort(side)

    def _abort_all(self) -> None:
        self._abort(self.client)
        self._abort(self.server)

    @staticmethod
    def _abort(side: _Side) -> None:
        if side.transport is not None and not side.lost:
            side.transport.abort()



__all__ = ["Connection", "DirectionStats", "Link", "ProxyStats"]
