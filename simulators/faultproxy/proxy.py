"""Proxies: a listener, and per accepted connection an upstream connection and two links.

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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from simulators.faultproxy.listen import is_loopback, listen_problem
from simulators.faultproxy.toxics import (
    STREAMS,
    Chunk,
    Stage,
    Stream,
    Toxic,
    stage_class,
)

log = logging.getLogger(__name__)

#: bytes queued in a link (toxics active) before it stops reading its source
QUEUE_HIGH = 4 * 1024 * 1024
QUEUE_LOW = 1024 * 1024
#: how long to connect to the upstream before giving up on the client
CONNECT_TIMEOUT = 10.0
#: after a graceful close, how long a peer that reads nothing may keep the socket
CLOSE_GRACE = 5.0


class FaultProxyError(Exception):
    """An error the HTTP API answers with its status: 400, 404, 409 or 500."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def split_address(address: str, what: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``; an empty host means every interface) -> (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise FaultProxyError(400, f"{what} must be host:port, got {address!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def join_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _resolve(address: str, what: str) -> tuple[str, int]:
    host, port = split_address(address, what)
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError as exc:
        raise FaultProxyError(400, f"{what} {address!r}: {exc}") from None
    return str(infos[0][4][0]), int(infos[0][4][1])


# --------------------------------------------------------------------------- statistics


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

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.conn is not None:
            self.conn.side_lost(self)


class _ClientSide(_Side):
    def __init__(self, proxy: Proxy) -> None:
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
                self.dest.transport.write(data)  # type: ignore[union-attr]
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

    def __init__(self, proxy: Proxy, client: _ClientSide) -> None:
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


# --------------------------------------------------------------------------- proxies


class Proxy:
    """``listen`` -> ``upstream``, with toxics. Create through :class:`FaultProxy`."""

    def __init__(
        self, name: str, *, listen: str, upstream: str, rng: random.Random | None = None
    ) -> None:
        if not name:
            raise FaultProxyError(400, "missing required field: name")
        if not upstream:
            raise FaultProxyError(400, "missing required field: upstream")
        split_address(listen, "listen")
        split_address(upstream, "upstream")
        self.name = name
        self.listen = listen  # the real address once listening (port 0 -> the port picked)
        self.upstream = upstream
        self.rng = rng if rng is not None else random.Random()
        self.toxics: dict[str, Toxic] = {}
        self.connections: set[Connection] = set()
        self.stats = ProxyStats()
        self._server: asyncio.Server | None = None

    @property
    def enabled(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        return split_address(self.listen, "listen")[1]

    @property
    def host(self) -> str:
        return split_address(self.listen, "listen")[0]

    # -- up and down

    async def enable(self) -> None:
        """Listen (again, on the same port once one was picked)."""
        if self._server is not None:
            return
        host, port = split_address(self.listen, "listen")
        try:
            infos = socket.getaddrinfo(
                host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
            family, kind, proto, _, address = infos[0]
            sock = socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(address)
                sock.listen(1024)
                sock.setblocking(False)
            except OSError:
                sock.close()
                raise
        except OSError as exc:
            raise FaultProxyError(
                500, f"proxy {self.name}: cannot listen on {self.listen}: {exc}"
            ) from None
        bound_host, bound_port = sock.getsockname()[:2]
        self.listen = join_address(bound_host, bound_port)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _ClientSide(self), sock=sock, backlog=1024
        )

    async def disable(self) -> None:
        """Toxiproxy's "down": stop listening and close every live connection."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for conn in list(self.connections):
            conn.close()

    async def update(
        self, *, listen: str | None = None, upstream: str | None = None, enabled: bool | None = None
    ) -> None:
        """Toxiproxy's POST /proxies/{proxy}: a new listen or upstream restarts the proxy
        (dropping its connections); ``enabled`` takes it up or down."""
        if upstream is not None:
            split_address(upstream, "upstream")
        new_listen = listen if listen is not None else self.listen
        new_upstream = upstream if upstream is not None else self.upstream
        if self._differs(new_listen, new_upstream):
            was_enabled = self.enabled
            await self.disable()
            self.listen, self.upstream = new_listen, new_upstream
            if enabled is None:
                enabled = was_enabled
        if enabled is True:
            await self.enable()
        elif enabled is False:
            await self.disable()

    def _differs(self, listen: str, upstream: str) -> bool:
        if upstream != self.upstream:
            return True
        if listen == self.listen:
            return False
        return _resolve(listen, "listen") != _resolve(self.listen, "listen")

    # -- toxics

    def add_toxic(
        self,
        type_: str,
        *,
        name: str | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        **attributes: int,
    ) -> Toxic:
        """``proxy.add_toxic("latency", stream="upstream", latency=100, jitter=10)``; takes
        effect on live connections at once."""
        return self.attach(
            Toxic.create(type_, name=name, stream=stream, toxicity=toxicity, **attributes)
        )

    def attach(self, toxic: Toxic) -> Toxic:
        if toxic.name in self.toxics:
            raise FaultProxyError(409, f"toxic already exists: {toxic.name}")
        self.toxics[toxic.name] = toxic
        for conn in list(self.connections):
            conn.links[toxic.stream].attach(toxic)
        return toxic

    def toxic(self, name: str) -> Toxic:
        try:
            return self.toxics[name]
        except KeyError:
            raise FaultProxyError(
                404, f"toxic not found: {name} (proxy {self.name} has "
                f"{', '.join(self.toxics) or 'no toxics'})"
            ) from None

    def update_toxic(
        self,
        name: str,
        *,
        toxicity: float | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Toxic:
        doc: dict[str, Any] = {"attributes": dict(attributes or {})}
        if toxicity is not None:
            doc["toxicity"] = toxicity
        return self.update_toxic_json(name, doc)

    def update_toxic_json(self, name: str, doc: object) -> Toxic:
        toxic = self.toxic(name).updated(doc)
        self.toxics[name] = toxic
        for conn in list(self.connections):
            conn.links[toxic.stream].update(toxic)
        return toxic

    def remove_toxic(self, name: str) -> None:
        toxic = self.toxic(name)
        del self.toxics[name]
        for conn in list(self.connections):
            conn.links[toxic.stream].detach(name)

    def reset_toxics(self) -> None:
        for name in list(self.toxics):
            self.remove_toxic(name)

    # -- views

    def to_json(self) -> dict[str, Any]:
        """Toxiproxy's proxy object; ``stats`` is ours (clients ignore unknown keys)."""
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [t.to_json() for t in self.toxics_in_chain_order()],
            "stats": {
                "connections_total": self.stats.connections_total,
                "connections_active": len(self.connections),
                **{
                    stream: {
                        "bytes_received": self.stats.direction(stream).received,
                        "bytes_sent": self.stats.direction(stream).sent,
                    }
                    for stream in STREAMS
                },
            },
        }

    def toxics_in_chain_order(self) -> list[Toxic]:
        """Upstream toxics, then downstream ones, each in the order added (as Toxiproxy)."""
        return [t for s in STREAMS for t in self.toxics.values() if t.stream == s]


# --------------------------------------------------------------------------- the collection


class FaultProxy:
    """Every proxy, plus (with ``api_port``) the Toxiproxy-compatible HTTP API.

    ``async with FaultProxy(api_port=0) as fp:``
    ``proxy = await fp.create("db", listen="127.0.0.1:0", upstream="127.0.0.1:8086")``
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        api_port: int | None = None,
        *,
        seed: int | None = None,
        allow_remote_listen: bool = False,
    ) -> None:
        self.host = host
        self.api_port = api_port
        #: off: every proxy listens on loopback only (see listen.py)
        self.allow_remote_listen = allow_remote_listen
        # A proxy created without ``listen`` takes the API's host, unless that is off
        # loopback and remote listeners are not allowed: then loopback, not a refusal.
        self.default_listen = (
            join_address(host, 0) if allow_remote_listen or is_loopback(host) else "127.0.0.1:0"
        )
        self.rng = random.Random(seed)
        self.proxies: dict[str, Proxy] = {}
        self._api: Any = None  # simulators.faultproxy.api.ApiServer while served

    @property
    def api_url(self) -> str | None:
        return None if self._api is None else self._api.url

    async def start(self) -> None:
        if self.api_port is not None and self._api is None:
            from simulators.faultproxy.api import ApiServer  # api imports this module

            self._api = ApiServer(self, host=self.host, port=self.api_port)
            await self._api.start()
            self.api_port = self._api.port

    async def stop(self) -> None:
        if self._api is not None:
            await self._api.stop()
            self._api = None
        for proxy in list(self.proxies.values()):
            await proxy.disable()

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- proxies

    def check_listen(self, listen: str) -> None:
        """400 if ``listen`` is off loopback and remote listeners are not allowed."""
        host, _ = split_address(listen, "listen")
        problem = listen_problem(host, listen, allow_remote=self.allow_remote_listen)
        if problem is not None:
            raise FaultProxyError(400, problem)

    async def create(
        self, name: str, *, listen: str | None = None, upstream: str, enabled: bool = True
    ) -> Proxy:
        if name in self.proxies:
            raise FaultProxyError(409, f"proxy already exists: {name}")
        listen = listen or self.default_listen
        self.check_listen(listen)
        proxy = Proxy(
            name,
            listen=listen,
            upstream=upstream,
            rng=random.Random(self.rng.getrandbits(64)),
        )
        if enabled:
            await proxy.enable()
        self.proxies[name] = proxy
        return proxy

    def get(self, name: str) -> Proxy:
        try:
            return self.proxies[name]
        except KeyError:
            raise FaultProxyError(
                404, f"proxy not found: {name} (known: {', '.join(self.proxies) or 'none'})"
            ) from None

    async def delete(self, name: str) -> None:
        proxy = self.get(name)
        del self.proxies[name]
        await proxy.disable()

    async def populate(self, items: Sequence[Mapping[str, Any]]) -> list[Proxy]:
        """Toxiproxy's /populate: create each proxy, or replace one of the same name whose
        listen or upstream differ; one that matches is left as it is."""
        specs = list(_proxy_specs(items, default_listen=self.default_listen))
        for _, listen, _, _ in specs:  # all checked before any proxy is replaced
            self.check_listen(listen)
        out: list[Proxy] = []
        for name, listen, upstream, enabled in specs:
            existing = self.proxies.get(name)
            if existing is not None:
                if not existing._differs(listen, upstream):
                    out.append(existing)
                    continue
                await self.delete(name)
            out.append(await self.create(name, listen=listen, upstream=upstream, enabled=enabled))
        return out

    async def reset(self) -> None:
        """Toxiproxy's /reset: every proxy enabled, every toxic removed."""
        for proxy in list(self.proxies.values()):
            await proxy.enable()
            proxy.reset_toxics()


def _proxy_specs(items: object, default_listen: str) -> Iterable[tuple[str, str, str, bool]]:
    if not isinstance(items, list):
        raise FaultProxyError(400, "bad request body: expected a JSON list of proxies")
    specs = []
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise FaultProxyError(400, f"bad request body: proxy {i} is not a JSON object")
        name, listen, upstream = item.get("name"), item.get("listen"), item.get("upstream")
        enabled = item.get("enabled", True)
        if not isinstance(name, str) or not name:
            raise FaultProxyError(400, f"missing required field: name at proxy {i}")
        if not isinstance(upstream, str) or not upstream:
            raise FaultProxyError(400, f"missing required field: upstream at proxy {i}")
        if listen is None or listen == "":
            listen = default_listen
        if not isinstance(listen, str) or not isinstance(enabled, bool):
            raise FaultProxyError(
                400, f"bad request body: proxy {i}: listen must be a string, enabled a boolean"
            )
        split_address(listen, "listen")
        split_address(upstream, "upstream")
        specs.append((name, listen, upstream, enabled))
    return specs


__all__ = [
    "Connection",
    "DirectionStats",
    "FaultProxy",
    "FaultProxyError",
    "Link",
    "Proxy",
    "ProxyStats",
]
